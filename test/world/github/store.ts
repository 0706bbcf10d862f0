import { isoNow } from "./http.ts";

/** In-memory forge state (everything except git objects, which live in the bare repositories). */

export interface Label {
  id: number;
  name: string;
  color: string;
  description: string | null;
}

export interface Reaction {
  id: number;
  user: string;
  content: string;
  createdAt: string;
}

export interface Review {
  id: number;
  user: string;
  body: string;
  state: "APPROVED" | "CHANGES_REQUESTED" | "COMMENTED";
  commitId: string;
  submittedAt: string;
}

export interface ReviewComment {
  id: number;
  reviewId: number;
  user: string;
  path: string;
  line: number;
  side: "LEFT" | "RIGHT";
  body: string;
  commitId: string;
  createdAt: string;
}

export interface PullData {
  head: string;
  base: string;
  draft: boolean;
  headSha: string;
  reviews: Review[];
  reviewComments: ReviewComment[];
}

export interface Item {
  id: number;
  number: number;
  title: string;
  body: string | null;
  user: string;
  labels: string[];
  state: "open" | "closed";
  stateReason: string | null;
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
  reactions: Reaction[];
  pull?: PullData;
}

export interface Comment {
  id: number;
  issueNumber: number;
  body: string;
  user: string;
  createdAt: string;
  updatedAt: string;
  reactions: Reaction[];
}

export interface Repo {
  id: number;
  owner: string;
  name: string;
  fullName: string;
  bare: string;
  defaultBranch: string;
  private: boolean;
  /** Branches that refuse pushes over HTTP (GitHub branch protection). */
  protectedBranches: string[];
  /** Issues and pull requests share one number sequence, like GitHub. */
  lastNumber: number;
  items: Map<number, Item>;
  comments: Comment[];
  labels: Map<string, Label>;
}

const LABEL_COLORS = ["d73a4a", "0075ca", "a2eeef", "7057ff", "008672", "e4e669", "d876e3", "cfd3d7"];

/** Node ids in GitHub's opaque style (prefix + base64url), decodable back to repo and number. */
export const nodeId = (prefix: string, ...parts: (string | number)[]) =>
  `${prefix}_${Buffer.from(parts.join(":")).toString("base64url")}`;

export function decodeNodeId(id: string): { prefix: string; parts: string[] } | undefined {
  const m = /^([A-Za-z]+)_(.+)$/.exec(id);
  if (!m) return undefined;
  return {
    prefix: m[1] ?? "",
    parts: Buffer.from(m[2] ?? "", "base64url")
      .toString("utf8")
      .split(":"),
  };
}

export class Store {
  readonly repos = new Map<string, Repo>();
  private seq = 1000;
  private userIds = new Map<string, number>();

  constructor(
    readonly serverUrl: string,
    readonly apiUrl: string,
  ) {}

  nextId(): number {
    return ++this.seq;
  }

  repo(fullName: string): Repo | undefined {
    return this.repos.get(fullName.toLowerCase());
  }

  repoById(id: number): Repo | undefined {
    return [...this.repos.values()].find((r) => r.id === id);
  }

  addRepo(fullName: string, bare: string, defaultBranch: string, isPrivate: boolean): Repo {
    const [owner = "", name = ""] = fullName.split("/");
    const repo: Repo = {
      id: this.nextId(),
      owner,
      name,
      fullName,
      bare,
      defaultBranch,
      private: isPrivate,
      protectedBranches: [],
      lastNumber: 0,
      items: new Map(),
      comments: [],
      labels: new Map(),
    };
    this.repos.set(fullName.toLowerCase(), repo);
    return repo;
  }

  newItem(repo: Repo, fields: { title: string; body: string | null; user: string; labels?: string[] }): Item {
    const now = isoNow();
    const item: Item = {
      id: this.nextId(),
      number: ++repo.lastNumber,
      title: fields.title,
      body: fields.body,
      user: fields.user,
      labels: [],
      state: "open",
      stateReason: null,
      createdAt: now,
      updatedAt: now,
      closedAt: null,
      reactions: [],
    };
    for (const l of fields.labels ?? []) this.attachLabel(repo, item, l);
    repo.items.set(item.number, item);
    return item;
  }

  /** GitHub creates a repository label on the fly when an unknown one is added to an issue. */
  ensureLabel(repo: Repo, name: string, color?: string, description?: string | null): Label {
    const existing = repo.labels.get(name.toLowerCase());
    if (existing) return existing;
    const label: Label = {
      id: this.nextId(),
      name,
      color: color ?? LABEL_COLORS[repo.labels.size % LABEL_COLORS.length] ?? "ededed",
      description: description ?? null,
    };
    repo.labels.set(name.toLowerCase(), label);
    return label;
  }

  attachLabel(repo: Repo, item: Item, name: string): void {
    const label = this.ensureLabel(repo, name);
    if (!item.labels.some((l) => l.toLowerCase() === label.name.toLowerCase())) item.labels.push(label.name);
  }

  addComment(repo: Repo, item: Item, body: string, user: string): Comment {
    const now = isoNow();
    const comment: Comment = {
      id: this.nextId(),
      issueNumber: item.number,
      body,
      user,
      createdAt: now,
      updatedAt: now,
      reactions: [],
    };
    repo.comments.push(comment);
    item.updatedAt = now;
    return comment;
  }

  // ---- JSON shapes (as GitHub's REST API returns them) ----

  userJson(login: string) {
    let id = this.userIds.get(login);
    if (id === undefined) {
      id = 5000 + this.userIds.size;
      this.userIds.set(login, id);
    }
    const bot = login.endsWith("[bot]");
    return {
      login,
      id,
      node_id: nodeId(bot ? "BOT" : "U", id),
      avatar_url: `${this.serverUrl}/avatars/u/${id}`,
      url: `${this.apiUrl}/users/${encodeURIComponent(login)}`,
      html_url: bot ? `${this.serverUrl}/apps/${login.replace(/\[bot\]$/, "")}` : `${this.serverUrl}/${login}`,
      type: bot ? "Bot" : "User",
      site_admin: false,
    };
  }

  repoJson(repo: Repo) {
    const api = `${this.apiUrl}/repos/${repo.fullName}`;
    return {
      id: repo.id,
      node_id: nodeId("R", repo.id),
      name: repo.name,
      full_name: repo.fullName,
      private: repo.private,
      owner: this.userJson(repo.owner),
      html_url: `${this.serverUrl}/${repo.fullName}`,
      description: null,
      fork: false,
      url: api,
      clone_url: `${this.serverUrl}/${repo.fullName}.git`,
      git_url: `${this.serverUrl}/${repo.fullName}.git`,
      default_branch: repo.defaultBranch,
      visibility: repo.private ? "private" : "public",
      archived: false,
      disabled: false,
      permissions: { admin: false, maintain: false, push: true, triage: true, pull: true },
    };
  }

  labelJson(repo: Repo, name: string) {
    const label = this.ensureLabel(repo, name);
    return {
      id: label.id,
      node_id: nodeId("LA", label.id),
      url: `${this.apiUrl}/repos/${repo.fullName}/labels/${encodeURIComponent(label.name)}`,
      name: label.name,
      color: label.color,
      default: false,
      description: label.description,
    };
  }

  private reactionSummary(url: string, reactions: Reaction[]) {
    const count = (c: string) => reactions.filter((r) => r.content === c).length;
    return {
      url,
      total_count: reactions.length,
      "+1": count("+1"),
      "-1": count("-1"),
      laugh: count("laugh"),
      hooray: count("hooray"),
      confused: count("confused"),
      heart: count("heart"),
      rocket: count("rocket"),
      eyes: count("eyes"),
    };
  }

  reactionJson(reaction: Reaction) {
    return {
      id: reaction.id,
      node_id: nodeId("REA", reaction.id),
      user: this.userJson(reaction.user),
      content: reaction.content,
      created_at: reaction.createdAt,
    };
  }

  issueJson(repo: Repo, item: Item) {
    const api = `${this.apiUrl}/repos/${repo.fullName}/issues/${item.number}`;
    const html = `${this.serverUrl}/${repo.fullName}/${item.pull ? "pull" : "issues"}/${item.number}`;
    return {
      id: item.id,
      node_id: nodeId(item.pull ? "PR" : "I", repo.id, item.number),
      url: api,
      repository_url: `${this.apiUrl}/repos/${repo.fullName}`,
      labels_url: `${api}/labels{/name}`,
      comments_url: `${api}/comments`,
      events_url: `${api}/events`,
      html_url: html,
      number: item.number,
      state: item.state,
      state_reason: item.stateReason,
      title: item.title,
      body: item.body,
      user: this.userJson(item.user),
      labels: item.labels.map((l) => this.labelJson(repo, l)),
      assignee: null,
      assignees: [],
      milestone: null,
      locked: false,
      comments: repo.comments.filter((c) => c.issueNumber === item.number).length,
      ...(item.pull
        ? {
            pull_request: {
              url: `${this.apiUrl}/repos/${repo.fullName}/pulls/${item.number}`,
              html_url: html,
              diff_url: `${html}.diff`,
              patch_url: `${html}.patch`,
              merged_at: null,
            },
            draft: item.pull.draft,
          }
        : {}),
      closed_at: item.closedAt,
      created_at: item.createdAt,
      updated_at: item.updatedAt,
      author_association: item.user.endsWith("[bot]") ? "NONE" : "MEMBER",
      reactions: this.reactionSummary(`${api}/reactions`, item.reactions),
    };
  }

  commentJson(repo: Repo, comment: Comment) {
    const url = `${this.apiUrl}/repos/${repo.fullName}/issues/comments/${comment.id}`;
    const item = repo.items.get(comment.issueNumber);
    return {
      id: comment.id,
      node_id: nodeId("IC", comment.id),
      url,
      html_url: `${this.serverUrl}/${repo.fullName}/${item?.pull ? "pull" : "issues"}/${comment.issueNumber}#issuecomment-${comment.id}`,
      issue_url: `${this.apiUrl}/repos/${repo.fullName}/issues/${comment.issueNumber}`,
      body: comment.body,
      user: this.userJson(comment.user),
      created_at: comment.createdAt,
      updated_at: comment.updatedAt,
      author_association: comment.user.endsWith("[bot]") ? "NONE" : "MEMBER",
      reactions: this.reactionSummary(`${url}/reactions`, comment.reactions),
    };
  }

  pullJson(repo: Repo, item: Item, baseSha: string) {
    const pull = item.pull;
    if (!pull) throw new Error(`#${item.number} is not a pull request`);
    const api = `${this.apiUrl}/repos/${repo.fullName}`;
    const html = `${this.serverUrl}/${repo.fullName}/pull/${item.number}`;
    const ref = (branch: string, sha: string) => ({
      label: `${repo.owner}:${branch}`,
      ref: branch,
      sha,
      user: this.userJson(repo.owner),
      repo: this.repoJson(repo),
    });
    return {
      url: `${api}/pulls/${item.number}`,
      id: item.id,
      node_id: nodeId("PR", repo.id, item.number),
      html_url: html,
      diff_url: `${html}.diff`,
      patch_url: `${html}.patch`,
      issue_url: `${api}/issues/${item.number}`,
      commits_url: `${api}/pulls/${item.number}/commits`,
      review_comments_url: `${api}/pulls/${item.number}/comments`,
      comments_url: `${api}/issues/${item.number}/comments`,
      statuses_url: `${api}/statuses/${pull.headSha}`,
      number: item.number,
      state: item.state,
      locked: false,
      title: item.title,
      user: this.userJson(item.user),
      body: item.body,
      labels: item.labels.map((l) => this.labelJson(repo, l)),
      milestone: null,
      active_lock_reason: null,
      created_at: item.createdAt,
      updated_at: item.updatedAt,
      closed_at: item.closedAt,
      merged_at: null,
      merge_commit_sha: null,
      assignee: null,
      assignees: [],
      requested_reviewers: [],
      requested_teams: [],
      head: ref(pull.head, pull.headSha),
      base: ref(pull.base, baseSha),
      author_association: item.user.endsWith("[bot]") ? "NONE" : "MEMBER",
      auto_merge: null,
      draft: pull.draft,
      merged: false,
      mergeable: null,
      mergeable_state: "unknown",
      merged_by: null,
      comments: repo.comments.filter((c) => c.issueNumber === item.number).length,
      review_comments: pull.reviewComments.length,
      maintainer_can_modify: false,
    };
  }

  reviewJson(repo: Repo, item: Item, review: Review) {
    return {
      id: review.id,
      node_id: nodeId("PRR", review.id),
      user: this.userJson(review.user),
      body: review.body,
      state: review.state,
      html_url: `${this.serverUrl}/${repo.fullName}/pull/${item.number}#pullrequestreview-${review.id}`,
      pull_request_url: `${this.apiUrl}/repos/${repo.fullName}/pulls/${item.number}`,
      submitted_at: review.submittedAt,
      commit_id: review.commitId,
      author_association: review.user.endsWith("[bot]") ? "NONE" : "MEMBER",
    };
  }

  reviewCommentJson(repo: Repo, item: Item, c: ReviewComment) {
    return {
      id: c.id,
      node_id: nodeId("PRRC", c.id),
      url: `${this.apiUrl}/repos/${repo.fullName}/pulls/comments/${c.id}`,
      pull_request_review_id: c.reviewId,
      path: c.path,
      line: c.line,
      original_line: c.line,
      side: c.side,
      commit_id: c.commitId,
      original_commit_id: c.commitId,
      user: this.userJson(c.user),
      body: c.body,
      created_at: c.createdAt,
      updated_at: c.createdAt,
      html_url: `${this.serverUrl}/${repo.fullName}/pull/${item.number}#discussion_r${c.id}`,
      pull_request_url: `${this.apiUrl}/repos/${repo.fullName}/pulls/${item.number}`,
      author_association: c.user.endsWith("[bot]") ? "NONE" : "MEMBER",
    };
  }
}

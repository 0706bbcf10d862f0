import { Octokit } from "@octokit/rest";
import { isAppLogin } from "../../core/findings.ts";
import { type Redactor, redactText } from "../../core/redact.ts";

export interface PullRef {
  number: number;
  url: string;
  headSha: string;
  branch: string;
  body: string;
}

/**
 * What the runner does on the forge, over Octokit with the scoped installation token. Every text it
 * writes (comment and review bodies, inline comments, PR title and body) goes through `redact` first:
 * this is where the stages' texts leave the pod, so no stage has to remember.
 */
export class Forge {
  readonly owner: string;
  readonly repo: string;
  private readonly octokit: Octokit;
  /** The App's login (`<slug>[bot]`, AGENTFACTORY_BOT_LOGIN): only its comments and reviews are ours. */
  private readonly botLogin: string | undefined;
  private readonly redact: Redactor;

  constructor(opts: { apiUrl: string; token: string; repo: string; botLogin?: string; redact?: Redactor }) {
    this.botLogin = opts.botLogin || undefined;
    const [owner, repo] = opts.repo.split("/");
    this.owner = owner ?? "";
    this.repo = repo ?? "";
    this.redact = opts.redact ?? redactText;
    this.octokit = new Octokit({
      baseUrl: opts.apiUrl,
      auth: opts.token,
      userAgent: "agentfactory-runner",
      log: { debug() {}, info() {}, warn() {}, error() {} },
    });
  }

  private get r() {
    return { owner: this.owner, repo: this.repo };
  }

  async defaultBranch(): Promise<string> {
    return (await this.octokit.rest.repos.get(this.r)).data.default_branch;
  }

  /** `byApp`: posted by the App itself (exact login); false for everyone else, other bots included. */
  async comments(issue: number): Promise<{ id: number; body: string; user: string; byApp: boolean; url: string }[]> {
    const all = await this.octokit.paginate(this.octokit.rest.issues.listComments, {
      ...this.r,
      issue_number: issue,
      per_page: 100,
    });
    return all.map((c) => ({
      id: c.id,
      body: c.body ?? "",
      user: c.user?.login ?? "",
      byApp: isAppLogin(c.user?.login, this.botLogin),
      url: c.html_url,
    }));
  }

  /**
   * Posts a comment unless one carrying `marker` already exists (a re-run of the same attempt after a
   * crash), in which case that one is returned untouched.
   */
  async commentOnce(
    issue: number,
    marker: string,
    body: string,
  ): Promise<{ id: number; url: string; reused: boolean }> {
    // Only the App's own comment counts: a person (or another bot) pasting the marker must not suppress ours.
    const existing = (await this.comments(issue)).find((c) => c.byApp && c.body.includes(marker));
    if (existing) return { id: existing.id, url: existing.url, reused: true };
    const { data } = await this.octokit.rest.issues.createComment({
      ...this.r,
      issue_number: issue,
      body: this.redact(`${marker}\n${body}`),
    });
    return { id: data.id, url: data.html_url, reused: false };
  }

  async ensureLabel(name: string, color: string, description: string): Promise<void> {
    try {
      await this.octokit.rest.issues.getLabel({ ...this.r, name });
    } catch (err) {
      if (status(err) !== 404) throw err;
      await this.octokit.rest.issues.createLabel({ ...this.r, name, color, description }).catch((e: unknown) => {
        if (status(e) !== 422) throw e; // created concurrently
      });
    }
  }

  async addLabels(issue: number, labels: string[]): Promise<void> {
    await this.octokit.rest.issues.addLabels({ ...this.r, issue_number: issue, labels });
  }

  async removeLabel(issue: number, name: string): Promise<void> {
    await this.octokit.rest.issues.removeLabel({ ...this.r, issue_number: issue, name }).catch((err: unknown) => {
      if (status(err) !== 404) throw err;
    });
  }

  async openPull(branch: string): Promise<PullRef | undefined> {
    const { data } = await this.octokit.rest.pulls.list({
      ...this.r,
      state: "open",
      head: `${this.owner}:${branch}`,
      per_page: 10,
    });
    const pr = data[0];
    return pr && { number: pr.number, url: pr.html_url, headSha: pr.head.sha, branch, body: pr.body ?? "" };
  }

  /** Opens a draft PR, or returns the open one for the branch (GitHub answers 422 for a duplicate). */
  async openDraftPull(args: {
    title: string;
    head: string;
    base: string;
    body: string;
  }): Promise<PullRef & { reused: boolean }> {
    const existing = await this.openPull(args.head);
    if (existing) return { ...existing, reused: true };
    try {
      const { data } = await this.octokit.rest.pulls.create({
        ...this.r,
        ...args,
        title: this.redact(args.title),
        body: this.redact(args.body),
        draft: true,
      });
      return {
        number: data.number,
        url: data.html_url,
        headSha: data.head.sha,
        branch: args.head,
        body: data.body ?? "",
        reused: false,
      };
    } catch (err) {
      if (status(err) !== 422) throw err;
      const raced = await this.openPull(args.head);
      if (!raced) throw err;
      return { ...raced, reused: true };
    }
  }

  async updatePullBody(pr: number, body: string): Promise<void> {
    await this.octokit.rest.pulls.update({ ...this.r, pull_number: pr, body: this.redact(body) });
  }

  async pull(pr: number): Promise<PullRef & { base: string; title: string }> {
    const { data } = await this.octokit.rest.pulls.get({ ...this.r, pull_number: pr });
    return {
      number: data.number,
      url: data.html_url,
      headSha: data.head.sha,
      branch: data.head.ref,
      body: data.body ?? "",
      base: data.base.ref,
      title: data.title,
    };
  }

  async pullFiles(pr: number): Promise<string[]> {
    const files = await this.octokit.paginate(this.octokit.rest.pulls.listFiles, {
      ...this.r,
      pull_number: pr,
      per_page: 100,
    });
    return files.flatMap((f) => (f.previous_filename ? [f.filename, f.previous_filename] : [f.filename]));
  }

  /** A file's text at a ref, or undefined when it does not exist there. */
  async fileAt(path: string, ref: string): Promise<string | undefined> {
    try {
      const { data } = await this.octokit.rest.repos.getContent({ ...this.r, path, ref });
      if (Array.isArray(data) || data.type !== "file" || !("content" in data)) return undefined;
      return Buffer.from(data.content, "base64").toString("utf8");
    } catch (err) {
      if (status(err) === 404) return undefined;
      throw err;
    }
  }

  async reviews(pr: number): Promise<{ id: number; body: string; user: string; byApp: boolean; commitId: string }[]> {
    const all = await this.octokit.paginate(this.octokit.rest.pulls.listReviews, {
      ...this.r,
      pull_number: pr,
      per_page: 100,
    });
    return all.map((r) => ({
      id: r.id,
      body: r.body ?? "",
      user: r.user?.login ?? "",
      byApp: isAppLogin(r.user?.login, this.botLogin),
      commitId: r.commit_id ?? "",
    }));
  }

  /** Posts one review (event COMMENT) unless a review carrying `marker` exists already. */
  async reviewOnce(
    pr: number,
    marker: string,
    review: { commitId: string; body: string; comments: { path: string; line: number; body: string }[] },
  ): Promise<{ id: number; reused: boolean }> {
    const existing = (await this.reviews(pr)).find((r) => r.byApp && r.body.includes(marker));
    if (existing) return { id: existing.id, reused: true };
    const create = (comments: typeof review.comments) =>
      this.octokit.rest.pulls.createReview({
        ...this.r,
        pull_number: pr,
        commit_id: review.commitId,
        event: "COMMENT",
        body: this.redact(`${marker}\n${review.body}`),
        comments: comments.map((c) => ({
          path: c.path,
          line: c.line,
          side: "RIGHT" as const,
          body: this.redact(c.body),
        })),
      });
    try {
      return { id: (await create(review.comments)).data.id, reused: false };
    } catch (err) {
      // An inline comment on a line outside the diff is refused (422): keep the findings in the body.
      if (status(err) !== 422 || !review.comments.length) throw err;
      return { id: (await create([])).data.id, reused: false };
    }
  }

  async comment(issue: number, body: string): Promise<void> {
    await this.octokit.rest.issues.createComment({ ...this.r, issue_number: issue, body: this.redact(body) });
  }
}

function status(err: unknown): number | undefined {
  return typeof err === "object" && err !== null && "status" in err
    ? Number((err as { status: unknown }).status)
    : undefined;
}

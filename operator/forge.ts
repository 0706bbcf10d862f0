import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/rest";
import { isAppLogin } from "../core/findings.ts";
import type { StageName } from "../core/result.ts";
import type { ForgePull, ForgeReview } from "../core/verify.ts";

export type Permissions = Record<string, "read" | "write">;

/** What a stage's token may do, on its one repository. */
export const STAGE_PERMISSIONS: Record<StageName, Permissions> = {
  triage: { metadata: "read", contents: "read", issues: "write" },
  review: { metadata: "read", contents: "read", issues: "write", pull_requests: "write" },
  write: { metadata: "read", contents: "write", issues: "write", pull_requests: "write" },
  remediate: { metadata: "read", contents: "write", issues: "write", pull_requests: "write" },
};

/** What the operator itself needs to finalize a run (comments, labels, mark ready, PR body). */
export const FINALIZE_PERMISSIONS: Permissions = {
  metadata: "read",
  contents: "read",
  issues: "write",
  pull_requests: "write",
};

/** What the operator reads to admit a ticket (sender permission, a pull request's head, an issue). */
export const READ_PERMISSIONS: Permissions = { metadata: "read", issues: "read", pull_requests: "read" };

/** A collaborator's permission as the forge's legacy `permission` field reports it (maintain → write, triage → read). */
export type RepoPermission = "admin" | "write" | "read" | "none";

/** An issue's text as the forge has it now. */
export interface IssueText {
  title: string;
  body: string;
  url: string;
  author: string;
  labels: string[];
}

export interface ForgeOptions {
  appId: string | number;
  privateKey: string;
  /** REST base, e.g. https://api.github.com or `<ghes>/api/v3`. */
  apiUrl: string;
  defaultInstallationId?: number;
  /**
   * The login the App acts as on the forge (`<slug>[bot]`). Unset: asked of the forge once (`GET /app`).
   * Only comments and reviews by this login count as the factory's own.
   */
  botLogin?: string;
}

/**
 * The operator's side of GitHub: it holds the App key and mints installation tokens limited to one
 * repository and the permissions a stage needs. Runner pods only ever see such a token.
 *
 * Example: `await new Forge(opts).mintToken("acme/web", STAGE_PERMISSIONS.triage)`.
 */
export class Forge {
  private readonly app: Octokit;
  private readonly installations = new Map<string, number>();
  private login?: Promise<string>;

  constructor(private readonly opts: ForgeOptions) {
    this.app = new Octokit({
      baseUrl: opts.apiUrl,
      authStrategy: createAppAuth,
      auth: { appId: opts.appId, privateKey: opts.privateKey },
      log: { debug() {}, info() {}, warn() {}, error() {} },
    });
  }

  /** The installation for a repository: the ticket's hint, a cached lookup, the App's lookup, or the default. */
  async installationId(repo: string, hint?: number): Promise<number> {
    if (hint) return hint;
    const cached = this.installations.get(repo);
    if (cached) return cached;
    const [owner, name] = repo.split("/") as [string, string];
    try {
      const { data } = await this.app.rest.apps.getRepoInstallation({ owner, repo: name });
      this.installations.set(repo, data.id);
      return data.id;
    } catch (err) {
      if (this.opts.defaultInstallationId) return this.opts.defaultInstallationId;
      throw err;
    }
  }

  /** The App's own login (`<slug>[bot]`): configured, or asked of the forge once; a failed lookup is retried. */
  botLogin(): Promise<string> {
    if (this.opts.botLogin) return Promise.resolve(this.opts.botLogin);
    this.login ??= this.app.rest.apps.getAuthenticated().then(
      ({ data }) => {
        if (!data?.slug) throw new Error("GET /app returned no slug");
        return `${data.slug}[bot]`;
      },
      (err: unknown) => {
        this.login = undefined;
        throw err;
      },
    );
    return this.login;
  }

  /** A short-lived installation token for exactly one repository and `permissions`. */
  async mintToken(repo: string, permissions: Permissions, installationHint?: number): Promise<string> {
    const installationId = await this.installationId(repo, installationHint);
    const name = repo.split("/")[1]!;
    const auth = (await this.app.auth({
      type: "installation",
      installationId,
      repositoryNames: [name],
      permissions,
      refresh: false,
    })) as { token: string };
    return auth.token;
  }

  /** A REST + GraphQL client acting as the installation on one repository. */
  async client(repo: string, installationHint?: number, permissions = FINALIZE_PERMISSIONS): Promise<Octokit> {
    const token = await this.mintToken(repo, permissions, installationHint);
    return new Octokit({
      baseUrl: this.opts.apiUrl,
      auth: token,
      log: { debug() {}, info() {}, warn() {}, error() {} },
    });
  }

  /** A user's permission on a repository (`GET …/collaborators/{user}/permission`); 404 is "none". */
  async permission(repo: string, user: string, installationHint?: number): Promise<RepoPermission> {
    const gh = await this.client(repo, installationHint, READ_PERMISSIONS);
    try {
      const { data } = await gh.rest.repos.getCollaboratorPermissionLevel({ ...split(repo), username: user });
      const level = data.permission;
      return level === "admin" || level === "write" || level === "read" ? level : "none";
    } catch (err) {
      if (status(err) === 404) return "none"; // not a user, or not visible to the installation
      throw err;
    }
  }

  /** A pull request's head branch, or undefined when there is no such pull request. */
  async pullRequestBranch(repo: string, number: number, installationHint?: number): Promise<string | undefined> {
    const gh = await this.client(repo, installationHint, READ_PERMISSIONS);
    try {
      return (await gh.rest.pulls.get({ ...split(repo), pull_number: number })).data.head.ref;
    } catch (err) {
      if (status(err) === 404) return undefined;
      throw err;
    }
  }

  /**
   * Posts a comment on an issue or pull request unless the App itself already posted one carrying
   * `marker` (a redelivered ticket); a pasted marker by anyone else does not count.
   */
  async commentOnce(repo: string, number: number, marker: string, body: string, installationHint?: number) {
    const gh = await this.client(repo, installationHint);
    const app = await this.botLogin();
    const comments = await gh.paginate(gh.rest.issues.listComments, {
      ...split(repo),
      issue_number: number,
      per_page: 100,
    });
    if (comments.some((c) => isAppLogin(c.user?.login, app) && c.body?.includes(marker))) return;
    await gh.rest.issues.createComment({ ...split(repo), issue_number: number, body: `${marker}\n${body}` });
  }

  /** A pull request as the forge has it now, or undefined when there is no such pull request. */
  async pull(repo: string, number: number, installationHint?: number): Promise<ForgePull | undefined> {
    const gh = await this.client(repo, installationHint, READ_PERMISSIONS);
    try {
      const { data } = await gh.rest.pulls.get({ ...split(repo), pull_number: number });
      return {
        number: data.number,
        url: data.html_url,
        state: data.state,
        ...(data.head.repo?.full_name ? { headRepo: data.head.repo.full_name } : {}),
        headRef: data.head.ref,
        headSha: data.head.sha,
        ...(data.user?.login ? { author: data.user.login } : {}),
      };
    } catch (err) {
      if (status(err) === 404) return undefined;
      throw err;
    }
  }

  /** A pull request's reviews, oldest first. */
  async reviews(repo: string, number: number, installationHint?: number): Promise<ForgeReview[]> {
    const gh = await this.client(repo, installationHint, READ_PERMISSIONS);
    const all = await gh.paginate(gh.rest.pulls.listReviews, { ...split(repo), pull_number: number, per_page: 100 });
    return all.map((r) => ({
      body: r.body ?? "",
      ...(r.user?.login ? { author: r.user.login } : {}),
      ...(r.commit_id ? { commitId: r.commit_id } : {}),
    }));
  }

  /** An issue's text as it is now, or undefined when there is no such issue. */
  async issue(repo: string, number: number, installationHint?: number): Promise<IssueText | undefined> {
    const gh = await this.client(repo, installationHint, READ_PERMISSIONS);
    try {
      const { data } = await gh.rest.issues.get({ ...split(repo), issue_number: number });
      return {
        title: data.title,
        body: data.body ?? "",
        url: data.html_url,
        author: data.user?.login ?? "",
        labels: data.labels.map((l) => (typeof l === "string" ? l : (l.name ?? ""))).filter(Boolean),
      };
    } catch (err) {
      if (status(err) === 404) return undefined;
      throw err;
    }
  }
}

const split = (repo: string) => {
  const [owner = "", name = ""] = repo.split("/");
  return { owner, repo: name };
};

const status = (err: unknown): number | undefined => (err as { status?: number } | undefined)?.status;

import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/rest";
import { Unavailable } from "./errors.ts";

/** A collaborator's permission as the forge's legacy `permission` field reports it (maintain → write, triage → read). */
export type RepoPermission = "admin" | "write" | "read" | "none";

export interface RepoRef {
  installationId: number;
  /** `owner/name` */
  repo: string;
}

/**
 * What the gateway asks the forge about a delivery, with the installation's own credentials.
 * Both methods throw `Unavailable` when the forge cannot answer (the delivery is then retried).
 */
export interface ForgePermissions {
  permission(ref: RepoRef & { user: string }): Promise<RepoPermission>;
  /** Head branch of a pull request (comments on pull requests do not carry it). */
  pullRequestBranch(ref: RepoRef & { number: number }): Promise<string | undefined>;
  /** An issue's text, for a retry asked for on its pull request. */
  issue(ref: RepoRef & { number: number }): Promise<IssueText | undefined>;
}

export interface IssueText {
  title: string;
  body: string;
  url: string;
  author: string;
  labels: string[];
}

/** Write or higher may start and steer runs. */
export const canSteer = (permission: RepoPermission): boolean => permission === "admin" || permission === "write";

export interface GitHubForgeOptions {
  appId: string | number;
  privateKey: string;
  /** REST base, `https://api.github.com` or `<ghes>/api/v3`. */
  baseUrl: string;
  timeoutMs?: number;
}

/**
 * ForgePermissions against the GitHub REST API, authenticated as the App installation that sent
 * the delivery (`GET /repos/{o}/{r}/collaborators/{user}/permission`). One Octokit per
 * installation; @octokit/auth-app caches and renews the installation token.
 */
export function githubForge({ appId, privateKey, baseUrl, timeoutMs = 5_000 }: GitHubForgeOptions): ForgePermissions {
  const clients = new Map<number, Octokit>();
  const client = (installationId: number): Octokit => {
    let octokit = clients.get(installationId);
    if (!octokit) {
      octokit = new Octokit({
        baseUrl,
        authStrategy: createAppAuth,
        auth: { appId, privateKey, installationId },
        userAgent: "agentfactory-gateway",
        log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
      });
      clients.set(installationId, octokit);
    }
    return octokit;
  };
  const split = (repo: string) => {
    const [owner = "", name = ""] = repo.split("/");
    return { owner, repo: name };
  };
  const forgeError = (err: unknown): Unavailable =>
    new Unavailable("forge", (err as Error).message ?? String(err), { cause: err });

  return {
    async permission({ installationId, repo, user }) {
      try {
        const { data } = await client(installationId).rest.repos.getCollaboratorPermissionLevel({
          ...split(repo),
          username: user,
          request: { signal: AbortSignal.timeout(timeoutMs) },
        });
        const level = data.permission;
        return level === "admin" || level === "write" || level === "read" ? level : "none";
      } catch (err) {
        // 404: not a user, or not visible to the installation: no permission at all.
        if ((err as { status?: number }).status === 404) return "none";
        throw forgeError(err);
      }
    },
    async issue({ installationId, repo, number }) {
      try {
        const { data } = await client(installationId).rest.issues.get({
          ...split(repo),
          issue_number: number,
          request: { signal: AbortSignal.timeout(timeoutMs) },
        });
        return {
          title: data.title,
          body: data.body ?? "",
          url: data.html_url,
          author: data.user?.login ?? "",
          labels: data.labels.map((l) => (typeof l === "string" ? l : (l.name ?? ""))).filter(Boolean),
        };
      } catch (err) {
        if ((err as { status?: number }).status === 404) return undefined;
        throw forgeError(err);
      }
    },
    async pullRequestBranch({ installationId, repo, number }) {
      try {
        const { data } = await client(installationId).rest.pulls.get({
          ...split(repo),
          pull_number: number,
          request: { signal: AbortSignal.timeout(timeoutMs) },
        });
        return data.head.ref;
      } catch (err) {
        if ((err as { status?: number }).status === 404) return undefined;
        throw forgeError(err);
      }
    },
  };
}

export interface PermissionCacheOptions {
  ttlMs: number;
  maxEntries?: number;
  now?: () => number;
}

/**
 * Caches `permission` answers for `ttlMs` (a burst of deliveries from one sender costs one API
 * call). Errors are not cached. The oldest entries go first when the cache is full.
 */
export function cachedPermissions(
  forge: ForgePermissions,
  { ttlMs, maxEntries = 10_000, now = Date.now }: PermissionCacheOptions,
): ForgePermissions & { hits(): number } {
  const cache = new Map<string, { value: RepoPermission; expires: number }>();
  let hits = 0;
  return {
    hits: () => hits,
    pullRequestBranch: (ref) => forge.pullRequestBranch(ref),
    issue: (ref) => forge.issue(ref),
    async permission(ref) {
      const key = `${ref.installationId}\n${ref.repo.toLowerCase()}\n${ref.user.toLowerCase()}`;
      const entry = cache.get(key);
      if (entry && entry.expires > now()) {
        hits++;
        return entry.value;
      }
      const value = await forge.permission(ref);
      cache.delete(key);
      if (cache.size >= maxEntries) {
        const oldest = cache.keys().next().value;
        if (oldest !== undefined) cache.delete(oldest);
      }
      cache.set(key, { value, expires: now() + ttlMs });
      return value;
    },
  };
}

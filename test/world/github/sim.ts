import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  APP_PERMISSIONS,
  allows,
  type Grant,
  generateAppKey,
  type Level,
  narrowPermissions,
  newToken,
  verifyAppJwt,
} from "./app.ts";
import { branchHeads, type Delivery, WebhookEmitter, type WebhookTarget } from "./events.ts";
import { commitFiles, createBareRepo, gitBuffer, revParse, serveGitHttp } from "./git.ts";
import { gitDataRoutes } from "./gitdata.ts";
import { execute, parse } from "./graphql.ts";
import { graphqlRoots } from "./graphql-root.ts";
import { forbidden, GitHubError, isoNow, notFound, type Reply, readJson, send, validationFailed } from "./http.ts";
import { issueRoutes } from "./issues.ts";
import { pullRoutes, renderPull } from "./pulls.ts";
import { type Ctx, type Route, route } from "./routes.ts";
import { type Item, type Repo, Store } from "./store.ts";

export type RepoPermission = "admin" | "write" | "read" | "none";

export interface GitHubSimOptions {
  /** Collaborator permission per login, for `GET /repos/:o/:r/collaborators/:user/permission`. */
  users?: Record<string, RepoPermission>;
  /** App slug; the bot user is `<slug>[bot]`. Default "agentfactory". */
  appSlug?: string;
  /**
   * What the App was granted at installation (default: contents, pull_requests, issues = write,
   * metadata = read). Token requests beyond it get 422, as on GitHub.
   */
  appPermissions?: Record<string, Level>;
  /** Where the App's webhook delivers (can also be set later with `setWebhook`). */
  webhook?: WebhookTarget;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: string;
  status: number;
}

type IssueJson = ReturnType<Store["issueJson"]>;
type CommentJson = ReturnType<Store["commentJson"]>;
type PullJson = ReturnType<Store["pullJson"]>;
type ReviewJson = ReturnType<Store["reviewJson"]>;
type ReviewCommentJson = ReturnType<Store["reviewCommentJson"]>;

export interface GitHubSim {
  /** `http://127.0.0.1:<port>`: GITHUB_SERVER_URL; clone URL = `${serverUrl}/${repo}.git`. */
  serverUrl: string;
  /** `${serverUrl}/api/v3`: GITHUB_API_URL and Octokit's baseUrl. */
  apiUrl: string;
  /** `${serverUrl}/api/graphql`. */
  graphqlUrl: string;
  appId: number;
  appSlug: string;
  /** Login the App acts as: `<slug>[bot]`. */
  botLogin: string;
  privateKeyPem: string;
  installationId: number;
  /**
   * A repository with one real commit on the default branch ("main"); files starting with "#!" are
   * executable. Pushes over HTTP follow GitHub's rules: `protectedBranches` refuse them (GH006), and
   * commits touching `.github/workflows/` need a token with `workflows: write`.
   */
  createRepo(
    fullName: string,
    files: Record<string, string>,
    opts?: { defaultBranch?: string; private?: boolean; protectedBranches?: string[] },
  ): Promise<{ id: number; fullName: string; cloneUrl: string }>;
  /**
   * Commits files (null deletes) on a branch by a real git push, e.g. a human changing main or pushing
   * to the agent's branch. The branch is created from the default branch when missing. Returns the SHA.
   */
  commitFiles(
    repo: string,
    branch: string,
    files: Record<string, string | null>,
    message?: string,
    user?: string,
  ): Promise<string>;
  createIssue(repo: string, issue: { title: string; body?: string; user?: string; labels?: string[] }): IssueJson;
  /** A comment by someone other than the App (e.g. the human replying to a question). */
  addComment(repo: string, n: number, comment: { body: string; user: string }): CommentJson;
  /** A review submitted by someone other than the App (e.g. another bot asking for changes). */
  submitReview(
    repo: string,
    n: number,
    review: { user: string; body: string; event: "APPROVE" | "REQUEST_CHANGES" | "COMMENT" },
  ): ReviewJson;
  issue(repo: string, n: number): IssueJson;
  comments(repo: string, n: number): CommentJson[];
  pulls(repo: string): Promise<PullJson[]>;
  pull(repo: string, n: number): Promise<PullJson>;
  reviews(repo: string, n: number): ReviewJson[];
  reviewComments(repo: string, n: number): ReviewCommentJson[];
  /** Label names on an issue or pull request. */
  labels(repo: string, n: number): string[];
  /** Reactions on an issue, or on a comment when `commentId` is given. */
  reactions(repo: string, n: number, commentId?: number): { user: string; content: string }[];
  setPermission(user: string, permission: RepoPermission): void;
  branchSha(repo: string, branch: string): Promise<string | undefined>;
  /** Path of the bare repository on disk (for direct `git` inspection in tests). */
  bareDir(repo: string): string;
  readFile(repo: string, ref: string, path: string): Promise<string | undefined>;
  /** `${serverUrl}/<repo>.git`; with a token, credentials are embedded (`x-access-token:<token>@`). */
  cloneUrl(repo: string, token?: string): string;
  /** An installation token for one repository (default: the App's permissions). */
  mintToken(repo: string, permissions?: Record<string, Level>): string;
  /** Makes a token expire now (as if an hour had passed). */
  expireToken(token: string): void;
  requests: RequestRecord[];
  /**
   * Points the App's webhook at a receiver (e.g. the gateway), or turns it off. From then on, REST
   * writes, git pushes and the test actions above are delivered as GitHub events: issues.*, issue_comment.*,
   * pull_request.* (opened, edited, closed, reopened, synchronize, ready_for_review, labeled...),
   * pull_request_review.submitted, push.
   */
  setWebhook(target: WebhookTarget | undefined): void;
  /** Every delivery made, with its event, payload and the receiver's status. */
  deliveries: Delivery[];
  /** Resolves when all deliveries queued so far were attempted. */
  webhooksSettled(): Promise<void>;
  /** Sends a past delivery again with the same `X-GitHub-Delivery` id (GitHub's "Redeliver"). */
  redeliver(deliveryId: string): Promise<Delivery>;
  stop(): Promise<void>;
}

const GIT_PATH = /^\/([^/]+)\/([^/]+?)(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack|HEAD|objects\/.+)$/;

/**
 * Starts a GitHub Enterprise Server-shaped simulator on 127.0.0.1 (REST under /api/v3, GraphQL at
 * /api/graphql, git smart HTTP by the real `git http-backend`), with one GitHub App and one installation.
 *
 * @example
 * const gh = await startGitHubSim({ users: { alice: "write" } });
 * await gh.createRepo("acme/shop", { "README.md": "# shop\n" });
 * const octokit = new Octokit({ baseUrl: gh.apiUrl, auth: gh.mintToken("acme/shop") });
 */
export async function startGitHubSim(opts: GitHubSimOptions = {}): Promise<GitHubSim> {
  const root = await mkdtemp(join(tmpdir(), "ghsim-"));
  const { privateKeyPem, publicKeyPem } = generateAppKey();
  const appId = 100 + Math.floor(Math.random() * 900000);
  const installationId = 1_000_000 + Math.floor(Math.random() * 1_000_000);
  const appSlug = opts.appSlug ?? "agentfactory";
  const appPermissions = { metadata: "read" as Level, ...(opts.appPermissions ?? APP_PERMISSIONS) };
  const botLogin = `${appSlug}[bot]`;
  const users = new Map(Object.entries(opts.users ?? {}));
  const tokens = new Map<string, Grant>();
  const requests: RequestRecord[] = [];
  const collaboratorRoute = route("GET", "/repos/:owner/:repo/collaborators/:user/permission", (ctx) => {
    ctx.need("metadata:read");
    const login = decodeURIComponent(ctx.params.user ?? "");
    const permission = users.get(login) ?? (login === ctx.repo.owner ? "admin" : "none");
    return {
      status: 200,
      body: { permission, role_name: permission, user: ctx.store.userJson(login) },
    };
  });
  const routes: Route[] = [...issueRoutes, ...pullRoutes, ...gitDataRoutes, collaboratorRoute];
  let store!: Store;
  let hooks!: WebhookEmitter;

  const installationJson = () => ({
    id: installationId,
    account: store.userJson(installationOwner()),
    app_id: appId,
    app_slug: appSlug,
    target_type: "Organization",
    repository_selection: "all",
    permissions: appPermissions,
    events: ["issues", "issue_comment", "pull_request", "pull_request_review"],
    access_tokens_url: `${store.apiUrl}/app/installations/${installationId}/access_tokens`,
    repositories_url: `${store.apiUrl}/installation/repositories`,
    html_url: `${store.serverUrl}/organizations/${installationOwner()}/settings/installations/${installationId}`,
    created_at: isoNow(),
    updated_at: isoNow(),
    suspended_at: null,
  });
  const installationOwner = () => [...store.repos.values()][0]?.owner ?? "agentfactory";

  const bearer = (req: IncomingMessage): string | undefined => {
    const m = /^(?:token|bearer)\s+(\S+)$/i.exec(req.headers.authorization ?? "");
    return m?.[1];
  };

  const grantFor = (token: string | undefined): Grant => {
    const grant = token ? tokens.get(token) : undefined;
    if (!grant || grant.expiresAt.getTime() <= Date.now()) throw new GitHubError(401, "Bad credentials");
    return grant;
  };

  const requireJwt = (req: IncomingMessage) => {
    const jwt = bearer(req);
    if (!jwt) throw new GitHubError(401, "A JSON web token could not be decoded");
    verifyAppJwt(jwt, publicKeyPem, appId);
  };

  const mint = (repoIds: Set<number> | null, permissions: Record<string, Level>): Grant => {
    const grant: Grant = { token: newToken(), repoIds, permissions, expiresAt: new Date(Date.now() + 3600_000) };
    tokens.set(grant.token, grant);
    return grant;
  };

  async function appRoutes(method: string, path: string, req: IncomingMessage): Promise<Reply | undefined> {
    if (method === "GET" && path === "/app") {
      requireJwt(req);
      return {
        status: 200,
        body: {
          id: appId,
          slug: appSlug,
          name: appSlug,
          owner: store.userJson(installationOwner()),
          permissions: appPermissions,
        },
      };
    }
    if (method === "GET" && path === "/app/installations") {
      requireJwt(req);
      return { status: 200, body: [installationJson()] };
    }
    const inst = /^\/app\/installations\/(\d+)(\/access_tokens)?$/.exec(path);
    if (inst) {
      requireJwt(req);
      if (Number(inst[1]) !== installationId) throw notFound();
      if (!inst[2] && method === "GET") return { status: 200, body: installationJson() };
      if (inst[2] && method === "POST") return accessToken(await readJson(req));
    }
    const repoInst = /^\/repos\/([^/]+)\/([^/]+)\/installation$/.exec(path);
    if (repoInst && method === "GET") {
      requireJwt(req);
      if (!store.repo(`${repoInst[1]}/${repoInst[2]}`)) throw notFound();
      return { status: 200, body: installationJson() };
    }
    if (method === "DELETE" && path === "/installation/token") {
      const token = bearer(req);
      grantFor(token);
      tokens.delete(token ?? "");
      return { status: 204 };
    }
    if (method === "GET" && path === "/installation/repositories") {
      const grant = grantFor(bearer(req));
      const repos = [...store.repos.values()].filter((r) => !grant.repoIds || grant.repoIds.has(r.id));
      return {
        status: 200,
        body: {
          total_count: repos.length,
          repository_selection: grant.repoIds ? "selected" : "all",
          repositories: repos.map((r) => store.repoJson(r)),
        },
      };
    }
    return undefined;
  }

  function accessToken(body: Record<string, unknown>): Reply {
    const names = body.repositories;
    const ids = body.repository_ids;
    let repos: Repo[] | null = null;
    const inaccessible = () =>
      new GitHubError(
        422,
        "There is at least one repository that does not exist or is not accessible to the parent installation.",
      );
    if (names !== undefined || ids !== undefined) {
      repos = [];
      for (const name of Array.isArray(names) ? names : []) {
        const found = [...store.repos.values()].filter(
          (r) =>
            r.name.toLowerCase() === String(name).toLowerCase() ||
            r.fullName.toLowerCase() === String(name).toLowerCase(),
        );
        if (found.length === 0) throw inaccessible();
        repos.push(...found);
      }
      for (const id of Array.isArray(ids) ? ids : []) {
        const found = store.repoById(Number(id));
        if (!found) throw inaccessible();
        repos.push(found);
      }
      if (repos.length === 0)
        throw validationFailed({ resource: "Installation", code: "invalid", field: "repositories" });
    }
    const grant = mint(
      repos ? new Set(repos.map((r) => r.id)) : null,
      narrowPermissions(body.permissions, appPermissions),
    );
    return {
      status: 201,
      body: {
        token: grant.token,
        expires_at: grant.expiresAt.toISOString().replace(/\.\d{3}Z$/, "Z"),
        permissions: grant.permissions,
        repository_selection: repos ? "selected" : "all",
        ...(repos ? { repositories: repos.map((r) => store.repoJson(r)) } : {}),
      },
    };
  }

  async function api(req: IncomingMessage, url: URL, path: string): Promise<Reply> {
    const method = req.method ?? "GET";
    const app = await appRoutes(method, path, req);
    if (app) return app;
    for (const r of routes) {
      if (r.method !== method) continue;
      const m = r.pattern.exec(path);
      if (!m) continue;
      const params = { ...m.groups } as Record<string, string>;
      const grant = grantFor(bearer(req));
      const repo = store.repo(`${params.owner}/${params.repo}`);
      if (!repo) throw notFound();
      if (grant.repoIds && !grant.repoIds.has(repo.id)) throw forbidden();
      const body = method === "GET" || method === "DELETE" ? {} : await readJson(req);
      const ctx: Ctx = {
        method,
        url,
        accept: String(req.headers.accept ?? ""),
        params,
        body,
        grant,
        actor: botLogin,
        repo,
        store,
        hooks,
        need: (...alternatives) => {
          const ok = alternatives.some((a) => {
            const [area = "", level = "read"] = a.split(":");
            return allows(grant, area, level as Level);
          });
          if (!ok) throw forbidden();
        },
      };
      return r.handler(ctx);
    }
    throw notFound();
  }

  async function graphql(req: IncomingMessage): Promise<Reply> {
    if (req.method !== "POST") throw notFound();
    const token = bearer(req);
    if (!token) throw new GitHubError(401, "This endpoint requires you to be authenticated.");
    const grant = grantFor(token);
    const body = await readJson(req);
    let op: ReturnType<typeof parse>;
    try {
      op = parse(String(body.query ?? ""), typeof body.operationName === "string" ? body.operationName : undefined);
    } catch (err) {
      return { status: 200, body: { errors: [{ message: (err as Error).message }] } };
    }
    const roots = graphqlRoots(store, grant, hooks, botLogin);
    const variables = (body.variables ?? {}) as Record<string, unknown>;
    const result = await execute(
      op.selections,
      op.kind === "mutation" ? roots.mutation : roots.query,
      variables,
      op.kind === "mutation" ? "Mutation" : "Query",
    );
    return { status: 200, body: result.errors.length ? result : { data: result.data } };
  }

  async function gitHttp(req: IncomingMessage, res: ServerResponse, url: URL, m: RegExpExecArray): Promise<number> {
    const repo = store.repo(`${m[1]}/${m[2]}`);
    const deny = (status: number, text: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "text/plain", ...headers }).end(`${text}\n`);
      return status;
    };
    const basic = /^basic\s+(\S+)$/i.exec(req.headers.authorization ?? "");
    if (!basic) return deny(401, "Authentication required", { "www-authenticate": 'Basic realm="GitHub"' });
    const decoded = Buffer.from(basic[1] ?? "", "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    const [user, password] = colon < 0 ? [decoded, ""] : [decoded.slice(0, colon), decoded.slice(colon + 1)];
    const grant = tokens.get(password) ?? tokens.get(user);
    if (!grant || grant.expiresAt.getTime() <= Date.now()) {
      return deny(401, "Invalid username or token. Password authentication is not supported for Git operations.", {
        "www-authenticate": 'Basic realm="GitHub"',
      });
    }
    if (!repo || (grant.repoIds && !grant.repoIds.has(repo.id)) || !allows(grant, "contents", "read")) {
      return deny(404, "Repository not found.");
    }
    const push = m[3] === "git-receive-pack" || url.searchParams.get("service") === "git-receive-pack";
    if (push && !allows(grant, "contents", "write")) return deny(403, "Write access to repository not granted.");
    const pushing = push && req.method === "POST";
    const before = pushing ? await branchHeads(repo.bare) : undefined;
    const status = await serveGitHttp(req, res, {
      projectRoot: root,
      pathInfo: `/${repo.fullName}.git/${m[3]}`,
      query: url.search.replace(/^\?/, ""),
      remoteUser: user || "x-access-token",
      env: { GHSIM_PROTECTED: repo.protectedBranches.join(" "), GHSIM_WORKFLOWS: grant.permissions.workflows ?? "" },
    });
    if (before) hooks.pushed(repo, botLogin, before, await branchHeads(repo.bare));
    return status;
  }

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", store.serverUrl);
    const record: RequestRecord = { method: req.method ?? "GET", path: url.pathname, query: url.search, status: 0 };
    requests.push(record);
    res.setHeader("x-github-request-id", `SIM:${requests.length.toString(16).toUpperCase()}`);
    try {
      const gitMatch = GIT_PATH.exec(url.pathname);
      if (gitMatch && !url.pathname.startsWith("/api/")) {
        record.status = await gitHttp(req, res, url, gitMatch);
        return;
      }
      let reply: Reply;
      if (url.pathname === "/api/graphql") reply = await graphql(req);
      else if (url.pathname.startsWith("/api/v3/")) reply = await api(req, url, url.pathname.slice("/api/v3".length));
      else throw notFound();
      record.status = reply.status;
      send(res, reply);
    } catch (err) {
      const e = err instanceof GitHubError ? err : new GitHubError(500, `Simulator error: ${(err as Error).message}`);
      if (!(err instanceof GitHubError)) console.error("github sim:", err);
      record.status = e.status;
      if (!res.headersSent) send(res, { status: e.status, body: e.body(), headers: e.headers });
      else res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  store = new Store(serverUrl, `${serverUrl}/api/v3`);
  hooks = new WebhookEmitter(store, installationId);
  hooks.target = opts.webhook;

  const mustRepo = (name: string): Repo => {
    const repo = store.repo(name);
    if (!repo) throw new Error(`github sim: no repository ${name}`);
    return repo;
  };
  const mustItem = (name: string, n: number): [Repo, Item] => {
    const repo = mustRepo(name);
    const it = repo.items.get(n);
    if (!it) throw new Error(`github sim: no issue or pull request #${n} in ${name}`);
    return [repo, it];
  };

  return {
    serverUrl,
    apiUrl: store.apiUrl,
    graphqlUrl: `${serverUrl}/api/graphql`,
    appId,
    appSlug,
    botLogin,
    privateKeyPem,
    installationId,
    async createRepo(fullName, files, repoOpts = {}) {
      if (!/^[\w.-]+\/[\w.-]+$/.test(fullName)) throw new Error(`github sim: bad repository name ${fullName}`);
      if (store.repo(fullName)) throw new Error(`github sim: ${fullName} exists`);
      const branch = repoOpts.defaultBranch ?? "main";
      const bare = await createBareRepo(root, fullName, files, branch);
      const repo = store.addRepo(fullName, bare, branch, repoOpts.private ?? true);
      repo.protectedBranches = repoOpts.protectedBranches ?? [];
      return { id: repo.id, fullName, cloneUrl: `${serverUrl}/${fullName}.git` };
    },
    async commitFiles(name, branch, files, message = "Update files", user = "octocat") {
      const repo = mustRepo(name);
      const before = await branchHeads(repo.bare);
      const sha = await commitFiles(repo.bare, branch, repo.defaultBranch, files, message);
      hooks.pushed(repo, user, before, await branchHeads(repo.bare));
      return sha;
    },
    createIssue(name, issue) {
      const repo = mustRepo(name);
      const it = store.newItem(repo, {
        title: issue.title,
        body: issue.body ?? null,
        user: issue.user ?? "octocat",
        labels: issue.labels ?? [],
      });
      hooks.item(repo, it.user, it, "opened");
      for (const l of it.labels) hooks.label(repo, it.user, it, "labeled", l);
      return store.issueJson(repo, it);
    },
    addComment(name, n, comment) {
      const [repo, it] = mustItem(name, n);
      const created = store.addComment(repo, it, comment.body, comment.user);
      hooks.comment(repo, comment.user, it, created, "created");
      return store.commentJson(repo, created);
    },
    submitReview(name, n, review) {
      const [repo, it] = mustItem(name, n);
      if (!it.pull) throw new Error(`github sim: #${n} is not a pull request`);
      const state = ({ APPROVE: "APPROVED", REQUEST_CHANGES: "CHANGES_REQUESTED", COMMENT: "COMMENTED" } as const)[
        review.event
      ];
      const r = {
        id: store.nextId(),
        user: review.user,
        body: review.body,
        state,
        commitId: it.pull.headSha,
        submittedAt: isoNow(),
      };
      it.pull.reviews.push(r);
      hooks.review(repo, review.user, it, r);
      return store.reviewJson(repo, it, r);
    },
    issue(name, n) {
      const [repo, it] = mustItem(name, n);
      return store.issueJson(repo, it);
    },
    comments(name, n) {
      const repo = mustRepo(name);
      return repo.comments.filter((c) => c.issueNumber === n).map((c) => store.commentJson(repo, c));
    },
    async pulls(name) {
      const repo = mustRepo(name);
      const items = [...repo.items.values()].filter((it) => it.pull);
      return Promise.all(items.map((it) => renderPull(store, repo, it)));
    },
    async pull(name, n) {
      const [repo, it] = mustItem(name, n);
      if (!it.pull) throw new Error(`github sim: #${n} is not a pull request`);
      return renderPull(store, repo, it);
    },
    reviews(name, n) {
      const [repo, it] = mustItem(name, n);
      return (it.pull?.reviews ?? []).map((r) => store.reviewJson(repo, it, r));
    },
    reviewComments(name, n) {
      const [repo, it] = mustItem(name, n);
      return (it.pull?.reviewComments ?? []).map((c) => store.reviewCommentJson(repo, it, c));
    },
    labels(name, n) {
      return [...mustItem(name, n)[1].labels];
    },
    reactions(name, n, commentId) {
      const [repo, it] = mustItem(name, n);
      const list =
        commentId === undefined ? it.reactions : (repo.comments.find((c) => c.id === commentId)?.reactions ?? []);
      return list.map((r) => ({ user: r.user, content: r.content }));
    },
    setPermission(user, permission) {
      users.set(user, permission);
    },
    bareDir: (name) => mustRepo(name).bare,
    branchSha: (name, branch) => revParse(mustRepo(name).bare, `refs/heads/${branch}`),
    async readFile(name, ref, path) {
      try {
        return (await gitBuffer(mustRepo(name).bare, ["show", `${ref}:${path}`])).toString("utf8");
      } catch {
        return undefined;
      }
    },
    cloneUrl(name, token) {
      const repo = mustRepo(name);
      return token
        ? `${serverUrl.replace("://", `://x-access-token:${token}@`)}/${repo.fullName}.git`
        : `${serverUrl}/${repo.fullName}.git`;
    },
    mintToken(name, permissions) {
      return mint(new Set([mustRepo(name).id]), narrowPermissions(permissions, appPermissions)).token;
    },
    expireToken(token) {
      const grant = tokens.get(token);
      if (grant) grant.expiresAt = new Date(Date.now() - 1000);
    },
    requests,
    setWebhook(target) {
      hooks.target = target;
    },
    deliveries: hooks.deliveries,
    webhooksSettled: () => hooks.settled(),
    redeliver: (id) => hooks.redeliver(id),
    async stop() {
      await hooks.settled();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(root, { recursive: true, force: true });
    },
  };
}

import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { branchHeads } from "./events.ts";
import { GIT_ENV, GitFailed, revParse } from "./git.ts";
import { GitHubError, notFound, type Reply, validationFailed } from "./http.ts";
import { type Ctx, type Route, route, str } from "./routes.ts";

/**
 * The Git Data API (`/repos/:o/:r/git/{refs,ref,commits,trees}`) over the real bare repository, with
 * git plumbing: blobs by `hash-object`, trees through a throw-away index (`read-tree` of the base
 * tree, `update-index`, `write-tree`), commits by `commit-tree`, refs by `update-ref` with the old
 * value, so a concurrent change fails instead of being lost. As on GitHub: creating an existing ref
 * is 422 "Reference already exists", a non-fast-forward update without `force` is 422 "Update is not
 * a fast forward", protected branches refuse updates. Ref writes are delivered as `push` events.
 * Not simulated: the workflows-permission check on commits made through this API.
 */

const ZERO = "0".repeat(40);
const MODES = new Set(["100644", "100755", "120000"]);

function run(bare: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      "git",
      args,
      { cwd: bare, env: { ...GIT_ENV, ...opts.env }, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new GitFailed(args, stderr, typeof err.code === "number" ? err.code : null));
        else resolve(stdout.trim());
      },
    );
    // Commands that never read stdin may exit first: a closed pipe is not an error.
    child.stdin?.on("error", () => {});
    child.stdin?.end(opts.input ?? "");
  });
}

async function objectType(bare: string, sha: string): Promise<string | undefined> {
  if (!/^[0-9a-f]{40}$/.test(sha)) return undefined;
  try {
    return await run(bare, ["cat-file", "-t", sha]);
  } catch {
    return undefined;
  }
}

/** `refs/heads/x` from the `*ref` parameter (`heads/x`) or a body's `ref`. */
function fullRef(ref: string): string {
  const clean = decodeURIComponent(ref).replace(/^\/+/, "");
  return clean.startsWith("refs/") ? clean : `refs/${clean}`;
}

function refJson(ctx: Ctx, ref: string, sha: string) {
  const api = `${ctx.store.apiUrl}/repos/${ctx.repo.fullName}`;
  return {
    ref,
    node_id: Buffer.from(`Ref:${ctx.repo.id}:${ref}`).toString("base64"),
    url: `${api}/git/${ref}`,
    object: { sha, type: "commit", url: `${api}/git/commits/${sha}` },
  };
}

async function commitJson(ctx: Ctx, sha: string) {
  const raw = await run(ctx.repo.bare, ["show", "-s", "--format=%T%n%P%n%an%n%ae%n%aI%n%cn%n%ce%n%cI%n%B", sha]);
  const [tree = "", parents = "", an, ae, ad, cn, ce, cd, ...message] = raw.split("\n");
  const api = `${ctx.store.apiUrl}/repos/${ctx.repo.fullName}`;
  return {
    sha,
    node_id: Buffer.from(`Commit:${sha}`).toString("base64"),
    url: `${api}/git/commits/${sha}`,
    html_url: `${ctx.store.serverUrl}/${ctx.repo.fullName}/commit/${sha}`,
    author: { name: an, email: ae, date: ad },
    committer: { name: cn, email: ce, date: cd },
    message: message.join("\n").trim(),
    tree: { sha: tree, url: `${api}/git/trees/${tree}` },
    parents: parents
      .split(" ")
      .filter(Boolean)
      .map((p) => ({ sha: p, url: `${api}/git/commits/${p}` })),
    verification: { verified: false, reason: "unsigned", signature: null, payload: null },
  };
}

/** Moves a ref from `before` (ZERO = create) to `after`, refusing protected branches; emits `push`. */
async function moveRef(ctx: Ctx, ref: string, before: string, after: string): Promise<void> {
  const branch = ref.replace(/^refs\/heads\//, "");
  if (ref.startsWith("refs/heads/") && ctx.repo.protectedBranches.includes(branch))
    throw new GitHubError(422, `Protected branch update failed for ${ref}.`);
  const heads = await branchHeads(ctx.repo.bare);
  try {
    await run(ctx.repo.bare, ["update-ref", ref, after, before === ZERO ? "" : before]);
  } catch {
    throw new GitHubError(422, "Reference update failed");
  }
  ctx.hooks.pushed(ctx.repo, ctx.actor, heads, await branchHeads(ctx.repo.bare));
}

export const gitDataRoutes: Route[] = [
  route("GET", "/repos/:owner/:repo/git/ref/*ref", async (ctx) => {
    ctx.need("contents:read");
    const ref = fullRef(ctx.params.ref ?? "");
    const sha = await revParse(ctx.repo.bare, ref);
    if (!sha) throw notFound();
    return { status: 200, body: refJson(ctx, ref, sha) };
  }),
  route("GET", "/repos/:owner/:repo/git/commits/:sha", async (ctx) => {
    ctx.need("contents:read");
    const sha = ctx.params.sha ?? "";
    if ((await objectType(ctx.repo.bare, sha)) !== "commit") throw notFound();
    return { status: 200, body: await commitJson(ctx, sha) };
  }),
  route("POST", "/repos/:owner/:repo/git/trees", async (ctx): Promise<Reply> => {
    ctx.need("contents:write");
    const bare = ctx.repo.bare;
    const base = str(ctx.body.base_tree);
    if (base && (await objectType(bare, base)) !== "tree")
      throw validationFailed({ resource: "Tree", field: "base_tree", code: "invalid" });
    const entries = Array.isArray(ctx.body.tree) ? (ctx.body.tree as Record<string, unknown>[]) : undefined;
    if (!entries) throw validationFailed({ resource: "Tree", field: "tree", code: "missing_field" });
    const dir = await mkdtemp(join(tmpdir(), "ghsim-index-"));
    const env = { GIT_INDEX_FILE: join(dir, "index") };
    try {
      if (base) await run(bare, ["read-tree", base], { env });
      else await run(bare, ["read-tree", "--empty"], { env });
      for (const e of entries) {
        const path = str(e.path)?.replace(/^\/+/, "");
        const mode = str(e.mode) ?? "100644";
        if (!path || !MODES.has(mode) || (e.type !== undefined && e.type !== "blob"))
          throw validationFailed({ resource: "Tree", field: "tree", code: "invalid" });
        if (e.sha === null) {
          // Mode 0 removes the entry; unlike --force-remove it needs no work tree.
          await run(bare, ["update-index", "--index-info"], { env, input: `0 ${ZERO}\t${path}\n` });
          continue;
        }
        let sha = str(e.sha);
        const content = str(e.content);
        if (content !== undefined) sha = await run(bare, ["hash-object", "-w", "--stdin"], { input: content });
        if (!sha || (await objectType(bare, sha)) !== "blob")
          throw validationFailed({ resource: "Tree", field: "sha", code: "invalid" });
        await run(bare, ["update-index", "--add", "--cacheinfo", `${mode},${sha},${path}`], { env });
      }
      const sha = await run(bare, ["write-tree"], { env });
      const listing = await run(bare, ["ls-tree", "-r", "-l", sha]);
      const api = `${ctx.store.apiUrl}/repos/${ctx.repo.fullName}`;
      return {
        status: 201,
        body: {
          sha,
          url: `${api}/git/trees/${sha}`,
          truncated: false,
          tree: listing
            .split("\n")
            .filter(Boolean)
            .map((line) => {
              const [meta = "", p = ""] = line.split("\t");
              const [m, type, s, size] = meta.trim().split(/\s+/);
              return { path: p, mode: m, type, sha: s, size: Number(size), url: `${api}/git/blobs/${s}` };
            }),
        },
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }),
  route("POST", "/repos/:owner/:repo/git/commits", async (ctx) => {
    ctx.need("contents:write");
    const bare = ctx.repo.bare;
    const message = str(ctx.body.message);
    const tree = str(ctx.body.tree);
    if (!message) throw validationFailed({ resource: "Commit", field: "message", code: "missing_field" });
    if (!tree || (await objectType(bare, tree)) !== "tree")
      throw validationFailed({ resource: "Commit", field: "tree", code: "invalid" });
    const parents = Array.isArray(ctx.body.parents) ? ctx.body.parents.map(String) : [];
    for (const p of parents)
      if ((await objectType(bare, p)) !== "commit")
        throw validationFailed({ resource: "Commit", field: "parents", code: "invalid" });
    const author = (ctx.body.author ?? {}) as Record<string, unknown>;
    const email = `${ctx.actor.replace(/\[bot\]$/, "")}[bot]@users.noreply.github.com`;
    const env = {
      GIT_AUTHOR_NAME: str(author.name) ?? ctx.actor,
      GIT_AUTHOR_EMAIL: str(author.email) ?? email,
      GIT_COMMITTER_NAME: ctx.actor,
      GIT_COMMITTER_EMAIL: email,
    };
    const sha = await run(bare, ["commit-tree", tree, ...parents.flatMap((p) => ["-p", p]), "-F", "-"], {
      input: message,
      env,
    });
    return { status: 201, body: await commitJson(ctx, sha) };
  }),
  route("POST", "/repos/:owner/:repo/git/refs", async (ctx) => {
    ctx.need("contents:write");
    const ref = str(ctx.body.ref);
    const sha = str(ctx.body.sha);
    if (!ref || !/^refs\/[^/]+\/.+/.test(ref))
      throw new GitHubError(422, "ref must be fully qualified (refs/heads/...) and contain at least two slashes");
    if (!sha || (await objectType(ctx.repo.bare, sha)) !== "commit")
      throw new GitHubError(422, "Object does not exist");
    if (await revParse(ctx.repo.bare, ref)) throw new GitHubError(422, "Reference already exists");
    await moveRef(ctx, ref, ZERO, sha);
    return { status: 201, body: refJson(ctx, ref, sha) };
  }),
  route("PATCH", "/repos/:owner/:repo/git/refs/*ref", async (ctx) => {
    ctx.need("contents:write");
    const ref = fullRef(ctx.params.ref ?? "");
    const sha = str(ctx.body.sha);
    const before = await revParse(ctx.repo.bare, ref);
    if (!before) throw new GitHubError(422, "Reference does not exist");
    if (!sha || (await objectType(ctx.repo.bare, sha)) !== "commit")
      throw new GitHubError(422, "Object does not exist");
    if (ctx.body.force !== true && before !== sha) {
      const ff = await run(ctx.repo.bare, ["merge-base", "--is-ancestor", before, sha]).then(
        () => true,
        () => false,
      );
      if (!ff) throw new GitHubError(422, "Update is not a fast forward");
    }
    if (before !== sha) await moveRef(ctx, ref, before, sha);
    return { status: 200, body: refJson(ctx, ref, sha) };
  }),
];

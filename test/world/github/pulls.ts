import { commentableLines, type DiffFile, diffFiles, git, gitBuffer, revParse } from "./git.ts";
import { GitHubError, isoNow, notFound, paginate, validationFailed } from "./http.ts";
import { type Ctx, type Route, route, str } from "./routes.ts";
import type { Item, Repo, Review, ReviewComment, Store } from "./store.ts";

/** Refreshes the head SHA from the bare repository (a push moves it) and renders the PR. */
export async function renderPull(store: Store, repo: Repo, it: Item) {
  const pull = it.pull!;
  const head = await revParse(repo.bare, `refs/heads/${pull.head}`);
  if (head) pull.headSha = head;
  else if (it.state === "open") {
    // Deleting the head branch closes the pull request, as on GitHub.
    it.state = "closed";
    it.closedAt = isoNow();
  }
  const baseSha = (await revParse(repo.bare, `refs/heads/${pull.base}`)) ?? "";
  return store.pullJson(repo, it, baseSha);
}

function pullItem(ctx: Ctx, level: "read" | "write"): Item {
  ctx.need(`pull_requests:${level}`);
  const it = ctx.repo.items.get(Number(ctx.params.n));
  if (!it?.pull) throw notFound();
  return it;
}

async function prFiles(repo: Repo, it: Item): Promise<DiffFile[]> {
  return diffFiles(repo.bare, `refs/heads/${it.pull!.base}`, it.pull!.headSha);
}

/** Maps a legacy diff `position` (1-based line index into the file's patch) to a RIGHT-side line. */
function positionToLine(patch: string, position: number): number | undefined {
  let right = 0;
  let index = 0;
  for (const line of patch.split("\n")) {
    const hunk = /^@@ -\d+(?:,\d+)? \+(\d+)/.exec(line);
    if (hunk) {
      if (index > 0) index++;
      right = Number(hunk[1]);
      continue;
    }
    index++;
    if (index === position) return line.startsWith("-") ? undefined : right;
    if (!line.startsWith("-")) right++;
  }
  return undefined;
}

const REVIEW_STATE: Record<string, Review["state"]> = {
  APPROVE: "APPROVED",
  REQUEST_CHANGES: "CHANGES_REQUESTED",
  COMMENT: "COMMENTED",
};

const unprocessable = (message: string) => new GitHubError(422, "Unprocessable Entity", [message]);

export const pullRoutes: Route[] = [
  route("GET", "/repos/:owner/:repo/pulls", async (ctx) => {
    ctx.need("pull_requests:read");
    const state = ctx.url.searchParams.get("state") ?? "open";
    const head = ctx.url.searchParams.get("head");
    const base = ctx.url.searchParams.get("base");
    const items = [...ctx.repo.items.values()]
      .filter((it) => it.pull && (state === "all" || it.state === state))
      .filter((it) => !head || `${ctx.repo.owner}:${it.pull!.head}`.toLowerCase() === head.toLowerCase())
      .filter((it) => !base || it.pull!.base === base)
      .sort((a, b) => b.number - a.number);
    return paginate(await Promise.all(items.map((it) => renderPull(ctx.store, ctx.repo, it))), ctx.url);
  }),
  route("POST", "/repos/:owner/:repo/pulls", async (ctx) => {
    ctx.need("pull_requests:write");
    const title = str(ctx.body.title);
    const headRaw = str(ctx.body.head);
    const base = str(ctx.body.base);
    if (!title) throw validationFailed({ resource: "PullRequest", code: "missing_field", field: "title" });
    if (!headRaw) throw validationFailed({ resource: "PullRequest", code: "missing_field", field: "head" });
    if (!base) throw validationFailed({ resource: "PullRequest", code: "missing_field", field: "base" });
    const [owner, branch] = headRaw.includes(":") ? headRaw.split(":", 2) : [ctx.repo.owner, headRaw];
    const headSha =
      owner?.toLowerCase() === ctx.repo.owner.toLowerCase() && branch
        ? await revParse(ctx.repo.bare, `refs/heads/${branch}`)
        : undefined;
    if (!headSha || !branch) throw validationFailed({ resource: "PullRequest", field: "head", code: "invalid" });
    const baseSha = await revParse(ctx.repo.bare, `refs/heads/${base}`);
    if (!baseSha) throw validationFailed({ resource: "PullRequest", field: "base", code: "invalid" });
    const open = [...ctx.repo.items.values()].find(
      (it) => it.pull && it.state === "open" && it.pull.head === branch && it.pull.base === base,
    );
    if (open) {
      throw validationFailed({
        resource: "PullRequest",
        code: "custom",
        message: `A pull request already exists for ${ctx.repo.owner}:${branch}.`,
      });
    }
    const ahead = Number((await git(ctx.repo.bare, ["rev-list", "--count", `${baseSha}..${headSha}`])).trim());
    if (ahead === 0) {
      throw validationFailed({
        resource: "PullRequest",
        code: "custom",
        message: `No commits between ${base} and ${branch}`,
      });
    }
    const it = ctx.store.newItem(ctx.repo, { title, body: str(ctx.body.body) ?? null, user: ctx.actor });
    it.pull = { head: branch, base, draft: ctx.body.draft === true, headSha, reviews: [], reviewComments: [] };
    ctx.hooks.pull(ctx.repo, ctx.actor, it, "opened");
    return { status: 201, body: await renderPull(ctx.store, ctx.repo, it) };
  }),
  route("GET", "/repos/:owner/:repo/pulls/:n", async (ctx) => {
    const it = pullItem(ctx, "read");
    const pr = await renderPull(ctx.store, ctx.repo, it);
    const format = /application\/vnd\.github(?:\.v3)?\.(diff|patch)/.exec(ctx.accept)?.[1];
    if (!format) return { status: 200, body: pr };
    const range = `refs/heads/${it.pull!.base}...${it.pull!.headSha}`;
    const text =
      format === "diff"
        ? await git(ctx.repo.bare, ["diff", "--no-color", range])
        : await git(ctx.repo.bare, ["format-patch", "--stdout", range.replace("...", "..")]);
    return { status: 200, text, headers: { "content-type": `text/x-${format}; charset=utf-8` } };
  }),
  route("PATCH", "/repos/:owner/:repo/pulls/:n", async (ctx) => {
    const it = pullItem(ctx, "write");
    const changes: Record<string, { from: unknown }> = {};
    if (typeof ctx.body.title === "string" && ctx.body.title !== it.title) {
      changes.title = { from: it.title };
      it.title = ctx.body.title;
    }
    if ("body" in ctx.body && (str(ctx.body.body) ?? null) !== it.body) {
      changes.body = { from: it.body };
      it.body = str(ctx.body.body) ?? null;
    }
    if (typeof ctx.body.base === "string" && ctx.body.base !== it.pull!.base) {
      changes.base = { from: { ref: it.pull!.base } };
      it.pull!.base = ctx.body.base;
    }
    if (Object.keys(changes).length) ctx.hooks.pull(ctx.repo, ctx.actor, it, "edited", { changes });
    if (ctx.body.state === "closed" && it.state === "open") {
      it.state = "closed";
      it.closedAt = isoNow();
      ctx.hooks.pull(ctx.repo, ctx.actor, it, "closed");
    } else if (ctx.body.state === "open" && it.state === "closed") {
      it.state = "open";
      it.closedAt = null;
      ctx.hooks.pull(ctx.repo, ctx.actor, it, "reopened");
    }
    it.updatedAt = isoNow();
    return { status: 200, body: await renderPull(ctx.store, ctx.repo, it) };
  }),
  route("GET", "/repos/:owner/:repo/pulls/:n/files", async (ctx) => {
    const it = pullItem(ctx, "read");
    await renderPull(ctx.store, ctx.repo, it);
    const api = `${ctx.store.apiUrl}/repos/${ctx.repo.fullName}`;
    const files = (await prFiles(ctx.repo, it)).map((f) => ({
      ...f,
      blob_url: `${ctx.store.serverUrl}/${ctx.repo.fullName}/blob/${it.pull!.headSha}/${f.filename}`,
      raw_url: `${ctx.store.serverUrl}/${ctx.repo.fullName}/raw/${it.pull!.headSha}/${f.filename}`,
      contents_url: `${api}/contents/${f.filename}?ref=${it.pull!.headSha}`,
    }));
    return paginate(files, ctx.url);
  }),
  route("POST", "/repos/:owner/:repo/pulls/:n/reviews", async (ctx) => {
    const it = pullItem(ctx, "write");
    await renderPull(ctx.store, ctx.repo, it);
    const event = str(ctx.body.event) ?? "";
    const state = REVIEW_STATE[event];
    if (!state) throw unprocessable(`Unknown review event: ${event || "(none)"}`);
    const body = str(ctx.body.body) ?? "";
    const comments = Array.isArray(ctx.body.comments) ? (ctx.body.comments as Record<string, unknown>[]) : [];
    if (it.user === ctx.actor && state !== "COMMENTED") {
      throw unprocessable(
        state === "APPROVED"
          ? "Review Can not approve your own pull request"
          : "Review Can not request changes on your own pull request",
      );
    }
    if (state === "CHANGES_REQUESTED" && !body) throw unprocessable("Review body is required for REQUEST_CHANGES");
    if (state === "COMMENTED" && !body && comments.length === 0)
      throw unprocessable("Review body is required for COMMENT");
    const files = comments.length ? await prFiles(ctx.repo, it) : [];
    const review: Review = {
      id: ctx.store.nextId(),
      user: ctx.actor,
      body,
      state,
      commitId: str(ctx.body.commit_id) ?? it.pull!.headSha,
      submittedAt: isoNow(),
    };
    const drafted: ReviewComment[] = comments.map((c) => {
      const path = str(c.path) ?? "";
      const file = files.find((f) => f.filename === path);
      if (!file) throw unprocessable("Pull request review thread path could not be resolved");
      const side = c.side === "LEFT" ? "LEFT" : "RIGHT";
      const line =
        typeof c.line === "number"
          ? c.line
          : typeof c.position === "number"
            ? positionToLine(file.patch ?? "", c.position)
            : undefined;
      if (line === undefined || !commentableLines(file.patch, side).has(line)) {
        throw unprocessable("Pull request review thread line must be part of the diff");
      }
      const text = str(c.body);
      if (!text) throw unprocessable("Pull request review thread body can't be blank");
      return {
        id: ctx.store.nextId(),
        reviewId: review.id,
        user: ctx.actor,
        path,
        line,
        side,
        body: text,
        commitId: review.commitId,
        createdAt: review.submittedAt,
      };
    });
    it.pull!.reviews.push(review);
    it.pull!.reviewComments.push(...drafted);
    ctx.hooks.review(ctx.repo, ctx.actor, it, review);
    return { status: 200, body: ctx.store.reviewJson(ctx.repo, it, review) };
  }),
  route("GET", "/repos/:owner/:repo/pulls/:n/reviews", (ctx) => {
    const it = pullItem(ctx, "read");
    return paginate(
      it.pull!.reviews.map((r) => ctx.store.reviewJson(ctx.repo, it, r)),
      ctx.url,
    );
  }),
  route("GET", "/repos/:owner/:repo/pulls/:n/comments", (ctx) => {
    const it = pullItem(ctx, "read");
    return paginate(
      it.pull!.reviewComments.map((c) => ctx.store.reviewCommentJson(ctx.repo, it, c)),
      ctx.url,
    );
  }),
  route("GET", "/repos/:owner/:repo/branches/:branch", async (ctx) => {
    ctx.need("contents:read");
    const branch = decodeURIComponent(ctx.params.branch ?? "");
    const sha = await revParse(ctx.repo.bare, `refs/heads/${branch}`);
    if (!sha) throw new GitHubError(404, "Branch not found");
    return {
      status: 200,
      body: {
        name: branch,
        commit: { sha, url: `${ctx.store.apiUrl}/repos/${ctx.repo.fullName}/commits/${sha}` },
        protected: false,
      },
    };
  }),
  route("GET", "/repos/:owner/:repo/contents/*path", async (ctx) => {
    ctx.need("contents:read");
    const path = decodeURIComponent(ctx.params.path ?? "").replace(/^\/+|\/+$/g, "");
    const ref = ctx.url.searchParams.get("ref") ?? ctx.repo.defaultBranch;
    const commit = (await revParse(ctx.repo.bare, ref)) ?? (await revParse(ctx.repo.bare, `refs/heads/${ref}`));
    if (!commit) throw new GitHubError(404, `No commit found for the ref ${ref}`);
    const api = `${ctx.store.apiUrl}/repos/${ctx.repo.fullName}/contents`;
    const entry = (p: string, type: string, sha: string, size: number) => ({
      name: p.split("/").pop() ?? p,
      path: p,
      sha,
      size,
      type: type === "tree" ? "dir" : "file",
      url: `${api}/${p}?ref=${ref}`,
      html_url: `${ctx.store.serverUrl}/${ctx.repo.fullName}/blob/${ref}/${p}`,
      git_url: `${ctx.store.apiUrl}/repos/${ctx.repo.fullName}/git/${type === "tree" ? "trees" : "blobs"}/${sha}`,
      download_url: type === "tree" ? null : `${ctx.store.serverUrl}/${ctx.repo.fullName}/raw/${ref}/${p}`,
    });
    let type: string;
    try {
      type = (await git(ctx.repo.bare, ["cat-file", "-t", `${commit}:${path}`])).trim();
    } catch {
      throw notFound();
    }
    if (type === "tree") {
      const listing = await git(ctx.repo.bare, ["ls-tree", "-l", `${commit}:${path}`]);
      const entries = listing
        .split("\n")
        .filter(Boolean)
        .map((line) => {
          const [meta = "", name = ""] = line.split("\t");
          const [, t = "blob", sha = "", size = "0"] = meta.split(/\s+/);
          return entry(path ? `${path}/${name}` : name, t, sha, Number(size) || 0);
        });
      return { status: 200, body: entries };
    }
    const sha = (await git(ctx.repo.bare, ["rev-parse", `${commit}:${path}`])).trim();
    const content = await gitBuffer(ctx.repo.bare, ["cat-file", "blob", sha]);
    const b64 = content.toString("base64").replace(/.{60}/g, "$&\n");
    return {
      status: 200,
      body: { ...entry(path, "blob", sha, content.length), content: `${b64}\n`, encoding: "base64" },
    };
  }),
];

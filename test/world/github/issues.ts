import { GitHubError, isoNow, notFound, paginate, type Reply, validationFailed } from "./http.ts";
import { type Ctx, type Route, route, str } from "./routes.ts";
import type { Comment, Item, Reaction } from "./store.ts";

const REACTIONS = new Set(["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]);

/** Issue endpoints accept the pull_requests permission too when the number is a pull request. */
function item(ctx: Ctx, level: "read" | "write"): Item {
  const found = ctx.repo.items.get(Number(ctx.params.n));
  ctx.need(...(found?.pull ? [`issues:${level}`, `pull_requests:${level}`] : [`issues:${level}`]));
  if (!found) throw notFound();
  return found;
}

function comment(ctx: Ctx, level: "read" | "write"): Comment {
  const found = ctx.repo.comments.find((c) => c.id === Number(ctx.params.id));
  const parent = found ? ctx.repo.items.get(found.issueNumber) : undefined;
  ctx.need(...(parent?.pull ? [`issues:${level}`, `pull_requests:${level}`] : [`issues:${level}`]));
  if (!found) throw notFound();
  return found;
}

function react(ctx: Ctx, reactions: Reaction[]): Reply {
  const content = str(ctx.body.content) ?? "";
  if (!REACTIONS.has(content)) throw validationFailed({ resource: "Reaction", code: "invalid", field: "content" });
  const existing = reactions.find((r) => r.user === ctx.actor && r.content === content);
  if (existing) return { status: 200, body: ctx.store.reactionJson(existing) };
  const reaction: Reaction = { id: ctx.store.nextId(), user: ctx.actor, content, createdAt: isoNow() };
  reactions.push(reaction);
  return { status: 201, body: ctx.store.reactionJson(reaction) };
}

function labelNames(ctx: Ctx): string[] {
  const raw = ctx.body._array ?? ctx.body.labels;
  if (!Array.isArray(raw)) throw validationFailed({ resource: "Label", code: "invalid", field: "labels" });
  return raw.map((l) => (typeof l === "string" ? l : (str((l as { name?: unknown }).name) ?? "")));
}

const labelsOf = (ctx: Ctx, it: Item) => it.labels.map((l) => ctx.store.labelJson(ctx.repo, l));

export const issueRoutes: Route[] = [
  route("GET", "/repos/:owner/:repo", (ctx) => {
    ctx.need("metadata:read");
    return { status: 200, body: ctx.store.repoJson(ctx.repo) };
  }),
  route("GET", "/repos/:owner/:repo/issues", (ctx) => {
    ctx.need("issues:read");
    const state = ctx.url.searchParams.get("state") ?? "open";
    const wanted = (ctx.url.searchParams.get("labels") ?? "").split(",").filter(Boolean);
    const items = [...ctx.repo.items.values()]
      .filter((it) => state === "all" || it.state === state)
      .filter((it) => wanted.every((w) => it.labels.some((l) => l.toLowerCase() === w.toLowerCase())))
      .sort((a, b) => b.number - a.number);
    return paginate(
      items.map((it) => ctx.store.issueJson(ctx.repo, it)),
      ctx.url,
    );
  }),
  route("POST", "/repos/:owner/:repo/issues", (ctx) => {
    ctx.need("issues:write");
    const title = str(ctx.body.title);
    if (!title) throw validationFailed({ resource: "Issue", code: "missing_field", field: "title" });
    const labels = Array.isArray(ctx.body.labels) ? ctx.body.labels.map(String) : [];
    const created = ctx.store.newItem(ctx.repo, { title, body: str(ctx.body.body) ?? null, user: ctx.actor, labels });
    ctx.hooks.item(ctx.repo, ctx.actor, created, "opened");
    for (const l of created.labels) ctx.hooks.label(ctx.repo, ctx.actor, created, "labeled", l);
    return { status: 201, body: ctx.store.issueJson(ctx.repo, created) };
  }),
  route("GET", "/repos/:owner/:repo/issues/:n", (ctx) => ({
    status: 200,
    body: ctx.store.issueJson(ctx.repo, item(ctx, "read")),
  })),
  route("PATCH", "/repos/:owner/:repo/issues/:n", (ctx) => {
    const it = item(ctx, "write");
    const changes: Record<string, { from: unknown }> = {};
    if (typeof ctx.body.title === "string" && ctx.body.title !== it.title) {
      changes.title = { from: it.title };
      it.title = ctx.body.title;
    }
    if ("body" in ctx.body && (str(ctx.body.body) ?? null) !== it.body) {
      changes.body = { from: it.body };
      it.body = str(ctx.body.body) ?? null;
    }
    if (Object.keys(changes).length) ctx.hooks.item(ctx.repo, ctx.actor, it, "edited", { changes });
    if (ctx.body.state === "closed" && it.state === "open") {
      it.state = "closed";
      it.closedAt = isoNow();
      it.stateReason = str(ctx.body.state_reason) ?? "completed";
      ctx.hooks.item(ctx.repo, ctx.actor, it, "closed");
    } else if (ctx.body.state === "open" && it.state === "closed") {
      it.state = "open";
      it.closedAt = null;
      it.stateReason = "reopened";
      ctx.hooks.item(ctx.repo, ctx.actor, it, "reopened");
    }
    if (Array.isArray(ctx.body.labels)) {
      it.labels = [];
      for (const l of labelNames(ctx)) ctx.store.attachLabel(ctx.repo, it, l);
    }
    it.updatedAt = isoNow();
    return { status: 200, body: ctx.store.issueJson(ctx.repo, it) };
  }),
  route("GET", "/repos/:owner/:repo/issues/:n/comments", (ctx) => {
    const it = item(ctx, "read");
    const all = ctx.repo.comments.filter((c) => c.issueNumber === it.number);
    return paginate(
      all.map((c) => ctx.store.commentJson(ctx.repo, c)),
      ctx.url,
    );
  }),
  route("POST", "/repos/:owner/:repo/issues/:n/comments", (ctx) => {
    const it = item(ctx, "write");
    const body = str(ctx.body.body);
    if (!body) throw validationFailed({ resource: "IssueComment", code: "missing_field", field: "body" });
    if (body.length > 65536)
      throw validationFailed({
        resource: "IssueComment",
        code: "custom",
        field: "body",
        message: "body is too long (maximum is 65536 characters)",
      });
    const created = ctx.store.addComment(ctx.repo, it, body, ctx.actor);
    ctx.hooks.comment(ctx.repo, ctx.actor, it, created, "created");
    return { status: 201, body: ctx.store.commentJson(ctx.repo, created) };
  }),
  route("GET", "/repos/:owner/:repo/issues/comments/:id", (ctx) => ({
    status: 200,
    body: ctx.store.commentJson(ctx.repo, comment(ctx, "read")),
  })),
  route("PATCH", "/repos/:owner/:repo/issues/comments/:id", (ctx) => {
    const c = comment(ctx, "write");
    const body = str(ctx.body.body);
    if (!body) throw validationFailed({ resource: "IssueComment", code: "missing_field", field: "body" });
    const from = c.body;
    c.body = body;
    c.updatedAt = isoNow();
    const parent = ctx.repo.items.get(c.issueNumber);
    if (parent) ctx.hooks.comment(ctx.repo, ctx.actor, parent, c, "edited", { changes: { body: { from } } });
    return { status: 200, body: ctx.store.commentJson(ctx.repo, c) };
  }),
  route("DELETE", "/repos/:owner/:repo/issues/comments/:id", (ctx) => {
    const c = comment(ctx, "write");
    ctx.repo.comments.splice(ctx.repo.comments.indexOf(c), 1);
    const parent = ctx.repo.items.get(c.issueNumber);
    if (parent) ctx.hooks.comment(ctx.repo, ctx.actor, parent, c, "deleted");
    return { status: 204 };
  }),
  route("POST", "/repos/:owner/:repo/issues/:n/reactions", (ctx) => react(ctx, item(ctx, "write").reactions)),
  route("POST", "/repos/:owner/:repo/issues/comments/:id/reactions", (ctx) =>
    react(ctx, comment(ctx, "write").reactions),
  ),
  route("GET", "/repos/:owner/:repo/issues/:n/labels", (ctx) => paginate(labelsOf(ctx, item(ctx, "read")), ctx.url)),
  route("POST", "/repos/:owner/:repo/issues/:n/labels", (ctx) => {
    const it = item(ctx, "write");
    const before = new Set(it.labels);
    for (const l of labelNames(ctx)) ctx.store.attachLabel(ctx.repo, it, l);
    for (const l of it.labels) if (!before.has(l)) ctx.hooks.label(ctx.repo, ctx.actor, it, "labeled", l);
    it.updatedAt = isoNow();
    return { status: 200, body: labelsOf(ctx, it) };
  }),
  route("PUT", "/repos/:owner/:repo/issues/:n/labels", (ctx) => {
    const it = item(ctx, "write");
    const before = it.labels;
    it.labels = [];
    for (const l of labelNames(ctx)) ctx.store.attachLabel(ctx.repo, it, l);
    for (const l of before) if (!it.labels.includes(l)) ctx.hooks.label(ctx.repo, ctx.actor, it, "unlabeled", l);
    for (const l of it.labels) if (!before.includes(l)) ctx.hooks.label(ctx.repo, ctx.actor, it, "labeled", l);
    it.updatedAt = isoNow();
    return { status: 200, body: labelsOf(ctx, it) };
  }),
  route("DELETE", "/repos/:owner/:repo/issues/:n/labels/:name", (ctx) => {
    const it = item(ctx, "write");
    const name = decodeURIComponent(ctx.params.name ?? "").toLowerCase();
    const at = it.labels.findIndex((l) => l.toLowerCase() === name);
    if (at < 0) throw new GitHubError(404, "Label does not exist");
    const [removed] = it.labels.splice(at, 1);
    if (removed) ctx.hooks.label(ctx.repo, ctx.actor, it, "unlabeled", removed);
    it.updatedAt = isoNow();
    return { status: 200, body: labelsOf(ctx, it) };
  }),
  route("GET", "/repos/:owner/:repo/labels", (ctx) => {
    ctx.need("issues:read", "pull_requests:read");
    return paginate(
      [...ctx.repo.labels.values()].map((l) => ctx.store.labelJson(ctx.repo, l.name)),
      ctx.url,
    );
  }),
  route("GET", "/repos/:owner/:repo/labels/:name", (ctx) => {
    ctx.need("issues:read", "pull_requests:read");
    const label = ctx.repo.labels.get(decodeURIComponent(ctx.params.name ?? "").toLowerCase());
    if (!label) throw notFound();
    return { status: 200, body: ctx.store.labelJson(ctx.repo, label.name) };
  }),
  route("POST", "/repos/:owner/:repo/labels", (ctx) => {
    ctx.need("issues:write", "pull_requests:write");
    const name = str(ctx.body.name);
    if (!name) throw validationFailed({ resource: "Label", code: "missing_field", field: "name" });
    if (ctx.repo.labels.has(name.toLowerCase())) {
      throw validationFailed({ resource: "Label", code: "already_exists", field: "name" });
    }
    const color = str(ctx.body.color)?.replace(/^#/, "");
    if (color !== undefined && !/^[0-9a-fA-F]{6}$/.test(color)) {
      throw validationFailed({ resource: "Label", code: "invalid", field: "color" });
    }
    ctx.store.ensureLabel(ctx.repo, name, color, str(ctx.body.description) ?? null);
    return { status: 201, body: ctx.store.labelJson(ctx.repo, name) };
  }),
];

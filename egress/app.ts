import { Hono } from "hono";
import { apiHandler, gitHandler, graphqlHandler, isGitPath } from "./forge.ts";
import { type EgressDeps, record } from "./http.ts";
import { LedgerUnavailable } from "./ledger.ts";
import { modelHandler } from "./model.ts";

/**
 * The runner-facing app: the model proxy, the forge proxy, and a refusal for everything else.
 * (CONNECT never reaches Hono: the HTTP server hands it to connect.ts.)
 */
export function proxyApp(deps: EgressDeps, ready: () => boolean): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.text("ok"));
  app.get("/readyz", (c) => (ready() ? c.text("ready") : c.text("not ready", 503)));
  app.post("/v1/messages", modelHandler(deps, false));
  app.post("/v1/messages/count_tokens", modelHandler(deps, true));
  app.all("/api/graphql", graphqlHandler(deps));
  app.all("/api/v3/*", apiHandler(deps));
  const git = gitHandler(deps);
  app.all("*", async (c) => {
    const url = new URL(c.req.url);
    if (isGitPath(url.pathname)) return git(c);
    await record(deps, {
      kind: "other",
      method: c.req.method,
      host: url.host,
      path: url.pathname,
      decision: "refused",
      reason: "not_proxied",
      status: 403,
    });
    return c.text("egress: refused: only the model API, the forge and allowlisted CONNECT hosts are reachable\n", 403);
  });
  app.onError((err, c) => {
    if (err instanceof LedgerUnavailable) {
      return c.json({ type: "error", error: { type: "overloaded_error", message: `egress: ${err.message}` } }, 503);
    }
    deps.logger.error({ event: "error", err: String(err?.stack ?? err), path: c.req.path }, "request failed");
    return c.json({ type: "error", error: { type: "api_error", message: "egress: internal error" } }, 500);
  });
  return app;
}

import type { Grant } from "./app.ts";
import type { WebhookEmitter } from "./events.ts";
import type { Reply } from "./http.ts";
import type { Repo, Store } from "./store.ts";

/** What a route handler sees: parsed request, the authenticated installation grant and the repository. */
export interface Ctx {
  method: string;
  url: URL;
  /** The request's `Accept` header (media types such as `application/vnd.github.diff`). */
  accept: string;
  params: Record<string, string>;
  body: Record<string, unknown>;
  grant: Grant;
  /** Login that performs writes: the App's bot user. */
  actor: string;
  repo: Repo;
  store: Store;
  /** Webhook events caused by this request. */
  hooks: WebhookEmitter;
  /** Throws 403 unless the token holds at least one of `area:level`. */
  need(...alternatives: string[]): void;
}

export interface Route {
  method: string;
  pattern: RegExp;
  handler: (ctx: Ctx) => Reply | Promise<Reply>;
}

/** `/repos/:owner/:repo/issues/:n` → anchored regex with named groups; `*path` matches the rest. */
export function route(method: string, path: string, handler: Route["handler"]): Route {
  const source = path
    .split("/")
    .map((seg) => {
      if (seg.startsWith(":")) return `(?<${seg.slice(1)}>[^/]+)`;
      if (seg.startsWith("*")) return `?(?<${seg.slice(1)}>.*)`;
      return seg;
    })
    .join("/");
  return { method, pattern: new RegExp(`^${source}$`), handler };
}

export function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

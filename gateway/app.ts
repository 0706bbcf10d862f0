import { type Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { type RequestIdVariables, requestId } from "hono/request-id";
import { timeout } from "hono/timeout";
import type { Logger } from "pino";
import { Ticket } from "../core/ticket.ts";
import { limitBody } from "./body-limit.ts";
import type { ClickUpClient } from "./clickup-api.ts";
import { DEFAULT_DEADLINE_MS, type GatewayConfig } from "./config.ts";
import { Unavailable } from "./errors.ts";
import { type GatewayMetrics, gatewayMetrics, type WebhookResult } from "./metrics.ts";
import type { Outcome, RequestContext } from "./outcome.ts";
import type { TicketPublisher } from "./publisher.ts";
import { clickupSource } from "./sources/clickup.ts";
import { dispatchSource } from "./sources/dispatch.ts";
import { githubSource } from "./sources/github.ts";

export interface AppDeps {
  publisher: TicketPublisher;
  config: GatewayConfig;
  /** Task lookups for ClickUp; required when `config.clickup` is set. */
  clickup?: ClickUpClient;
  logger: Logger;
  metrics?: GatewayMetrics;
  now?: () => Date;
}

type Source = "github" | "clickup" | "dispatch";
type Env = {
  Variables: RequestIdVariables & { source?: Source; event?: string; result?: WebhookResult; ticket?: string };
};

const STATUS_RESULT: Record<number, WebhookResult> = {
  400: "bad_request",
  401: "unauthorized",
  413: "too_large",
  422: "stale",
  503: "unavailable",
};

/**
 * The gateway's HTTP app: one route per trigger source, each verifying before parsing and
 * answering 202 only after the ticket is durably published.
 *
 * Answers (the same for every source):
 * - 202 `{id, kind, seq, duplicate}`: the ticket is in the TICKETS stream (a redelivery inside the
 *   broker's duplicate window answers `duplicate: true` and stores nothing new);
 * - 202 `{ignored}` / `{refused}`: verified but nothing to do, or refused (logged and counted; a 4xx
 *   would only make the sender retry or disable the hook). Whether a GitHub sender may steer runs is
 *   the operator's check: the gateway holds no forge credential;
 * - 200 for GitHub's ping; 401 bad or missing signature/token; 400 malformed; 413 too large;
 *   422 a signed event older than the replay horizon (72 h: a replay, never a redelivery);
 * - 503 with Retry-After when NATS or ClickUp cannot take the work, or the source's
 *   deadline passed: the sender redelivers, and the ticket id makes that idempotent.
 * A source without a configured secret is not served (404): unsigned requests are never accepted.
 *
 * @example
 * const app = createApp({ publisher, config, logger });
 * serve({ fetch: app.fetch, port: 8080 });
 */
export function createApp({
  publisher,
  config,
  clickup,
  logger,
  metrics = gatewayMetrics(),
  now = () => new Date(),
}: AppDeps): Hono<Env> {
  const app = new Hono<Env>();

  app.use(requestId({ headerName: "X-Request-Id" }));

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) =>
    publisher.ready() ? c.json({ status: "ready" }) : c.json({ status: "not_ready", missing: ["nats"] }, 503),
  );
  app.get("/metrics", async (c) =>
    c.text(await metrics.registry.metrics(), 200, { "Content-Type": metrics.registry.contentType }),
  );

  // Every trigger route: timing, metrics and one log line per request, whatever the outcome.
  const track = (source: Source) =>
    async function track(c: Context<Env>, next: () => Promise<void>) {
      const started = performance.now();
      c.set("source", source);
      await next();
      const status = c.res.status;
      const result = c.get("result") ?? STATUS_RESULT[status] ?? (status >= 500 ? "error" : "ignored");
      const event = c.get("event") ?? "unknown";
      const seconds = (performance.now() - started) / 1000;
      metrics.webhooks.inc({ source, event, result });
      metrics.webhookDuration.observe({ source, result }, seconds);
      const line = {
        requestId: c.get("requestId"),
        source,
        event,
        result,
        status,
        ticket: c.get("ticket"),
        durationMs: Math.round(seconds * 10_000) / 10,
      };
      if (status >= 500) logger.error({ ...line, err: c.error }, "trigger request failed");
      else if (result === "refused" || result === "unauthorized") logger.warn(line, "trigger request refused");
      else logger.info(line, "trigger request");
    };
  const limit = limitBody(config.bodyLimitBytes);
  // Answer before the sender gives up: a late 202 would be counted as a failure and redelivered anyway.
  const deadline = (source: Source) => {
    const ms = config.deadlineMs?.[source] ?? DEFAULT_DEADLINE_MS[source];
    return timeout(ms, () => new HTTPException(503, { message: `not handled within ${ms} ms` }));
  };

  const context = (c: Context<Env>): RequestContext => ({
    requestId: c.get("requestId"),
    receivedAt: now().toISOString(),
  });

  /** Publishes (or not) what a source decided, and answers. */
  const conclude = async (c: Context<Env>, outcome: Outcome) => {
    c.set("event", outcome.event);
    if (outcome.action === "ignore") {
      c.set("result", "ignored");
      return c.json({ ignored: outcome.reason }, outcome.status ?? 202);
    }
    if (outcome.action === "refuse") {
      c.set("result", "refused");
      logger.warn(
        { requestId: c.get("requestId"), sender: outcome.sender, reason: outcome.reason, event: outcome.event },
        "sender refused",
      );
      return c.json({ refused: outcome.reason }, 202);
    }
    // The schema is the contract with the operator: a ticket that breaks it is never published.
    const checked = Ticket.safeParse(outcome.ticket);
    if (!checked.success) throw new HTTPException(400, { message: "request yields no valid ticket" });
    const ticket = checked.data;
    const started = performance.now();
    let outcomeLabel = "error";
    try {
      const ack = await publisher.publish(ticket);
      outcomeLabel = ack.duplicate ? "duplicate" : "ok";
      c.set("result", ack.duplicate ? "duplicate" : "accepted");
      c.set("ticket", ticket.id);
      return c.json({ id: ticket.id, kind: ticket.kind, seq: ack.seq, duplicate: ack.duplicate }, 202);
    } finally {
      metrics.publishDuration.observe(
        { source: ticket.source, outcome: outcomeLabel },
        (performance.now() - started) / 1000,
      );
    }
  };

  if (config.github) {
    const handle = githubSource(config.github);
    app.post("/webhooks/github", track("github"), deadline("github"), limit, async (c) =>
      conclude(c, await handle({ rawBody: await c.req.text(), headers: c.req.raw.headers }, context(c))),
    );
  }
  if (config.clickup) {
    if (!clickup) throw new Error("createApp: config.clickup needs a ClickUp client");
    const handle = clickupSource({
      ...config.clickup,
      client: clickup,
      onRefuse: (reason) => metrics.clickupRefused.inc({ reason }),
    });
    app.post("/webhooks/clickup", track("clickup"), deadline("clickup"), limit, async (c) =>
      conclude(c, await handle({ rawBody: await c.req.arrayBuffer(), headers: c.req.raw.headers }, context(c))),
    );
  }
  if (config.dispatch) {
    const handle = dispatchSource(config.dispatch);
    app.post("/dispatch", track("dispatch"), deadline("dispatch"), limit, async (c) =>
      conclude(c, await handle({ rawBody: await c.req.arrayBuffer(), headers: c.req.raw.headers }, context(c))),
    );
  }

  app.notFound((c) => c.json({ error: "not_found" }, 404));
  app.onError((err, c) => {
    if (err instanceof HTTPException) return c.json({ error: err.message }, err.status);
    if (err instanceof Unavailable) {
      c.header("Retry-After", "5");
      return c.json({ error: "unavailable", dependency: err.dependency }, 503);
    }
    return c.json({ error: "internal_server_error" }, 500);
  });
  return app;
}

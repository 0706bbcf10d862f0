import { describe, expect, it } from "vitest";
import { FakePublisher, memoryLogger } from "../test/gateway/fakes.ts";
import { createApp } from "./app.ts";
import { appConfig, loadEnv } from "./config.ts";
import { gatewayMetrics } from "./metrics.ts";

function setup() {
  const publisher = new FakePublisher();
  const metrics = gatewayMetrics();
  const app = createApp({
    publisher,
    metrics,
    logger: memoryLogger().logger,
    config: { dispatch: { token: "t" }, bodyLimitBytes: 1024 },
  });
  return { app, publisher, metrics };
}

describe("probes and metrics", () => {
  it("GET /healthz answers 200 whatever NATS does", async () => {
    const { app, publisher } = setup();
    publisher.up = false;
    const res = await app.request("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("GET /readyz follows the NATS connection", async () => {
    const { app, publisher } = setup();
    expect((await app.request("/readyz")).status).toBe(200);
    publisher.up = false;
    const res = await app.request("/readyz");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: "not_ready", missing: ["nats"] });
  });

  it("GET /metrics exposes the webhook metrics in Prometheus text format", async () => {
    const { app } = setup();
    await app.request("/dispatch", { method: "POST", body: "{}" });
    const res = await app.request("/metrics");
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(text).toContain('agentfactory_webhooks_total{source="dispatch",event="unknown",result="unauthorized"} 1');
    expect(text).toContain("agentfactory_webhook_duration_seconds_bucket");
    expect(text).toContain("agentfactory_nats_publish_duration_seconds");
  });

  it("answers 404 as JSON, and does not serve unconfigured sources", async () => {
    const { app } = setup();
    const res = await app.request("/webhooks/github", { method: "POST", body: "{}" });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "not_found" });
    expect((await app.request("/webhooks/clickup", { method: "POST", body: "{}" })).status).toBe(404);
  });
});

describe("request id", () => {
  it("returns the caller's X-Request-Id, also on refusals", async () => {
    const { app } = setup();
    const res = await app.request("/dispatch", { method: "POST", body: "{}", headers: { "x-request-id": "abc-123" } });
    expect(res.status).toBe(401);
    expect(res.headers.get("x-request-id")).toBe("abc-123");
  });

  it.each([
    ["too long", "a".repeat(256)],
    ["with spaces and quotes", 'x" level=error msg="forged'],
  ])("replaces an id that is %s with a generated one", async (_name, id) => {
    const { app } = setup();
    const res = await app.request("/healthz", { headers: { "x-request-id": id } });
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("configuration", () => {
  const base = { GITHUB_WEBHOOK_SECRET: "s" };

  it("applies defaults", () => {
    const env = loadEnv(base);
    expect(env).toMatchObject({ PORT: 8080, TRIGGER_LABEL: "ai-agent", BODY_LIMIT_BYTES: 1048576, LOG_LEVEL: "info" });
    expect(appConfig(env)).toEqual({
      github: { webhookSecret: "s", triggerLabel: "ai-agent" },
      bodyLimitBytes: 1048576,
    });
  });

  it.each([
    ["no source at all", {}, "no trigger source configured"],
    ["ClickUp without an API token", { CLICKUP_WEBHOOK_SECRET: "s" }, "CLICKUP_API_TOKEN"],
    ["a malformed repo map", { DISPATCH_TOKEN: "t", CLICKUP_REPO_MAP: "{nope" }, "CLICKUP_REPO_MAP"],
    ["a bad port", { DISPATCH_TOKEN: "t", PORT: "http" }, "PORT"],
  ])("rejects %s", (_name, env, message) => {
    expect(() => loadEnv(env)).toThrow(message);
  });

  it("reads no GitHub App credential: the gateway checks signatures, the operator permissions", () => {
    const env = loadEnv({ ...base, GITHUB_APP_ID: "1", GITHUB_APP_PRIVATE_KEY: "-----BEGIN KEY-----" });
    expect(Object.keys(env).filter((k) => k.startsWith("GITHUB_APP"))).toEqual([]);
  });

  it("parses the ClickUp list map", () => {
    const env = loadEnv({
      ...base,
      CLICKUP_WEBHOOK_SECRET: "c",
      CLICKUP_API_TOKEN: "pk",
      CLICKUP_REPO_MAP: '{"901":"acme/widgets"}',
    });
    expect(appConfig(env).clickup?.repoMap).toEqual({ "901": "acme/widgets" });
  });
});

describe("logs", () => {
  it("never contain the configured secrets", () => {
    const { logger, lines } = memoryLogger();
    const env = loadEnv({
      GITHUB_WEBHOOK_SECRET: "gh-secret-value",
      CLICKUP_WEBHOOK_SECRET: "cu-secret-value",
      CLICKUP_API_TOKEN: "cu-token-value",
      DISPATCH_TOKEN: "dispatch-token-value",
    });
    logger.info({ config: env, headers: { authorization: "Bearer dispatch-token-value" } }, "starting");
    const text = lines.join("\n");
    expect(text).toContain("[redacted]");
    for (const secret of [
      "gh-secret-value",
      "private-key-value",
      "cu-secret-value",
      "cu-token-value",
      "dispatch-token-value",
    ]) {
      expect(text).not.toContain(secret);
    }
  });
});

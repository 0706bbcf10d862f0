import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModelSim, startModelSim, text, turn } from "../world/anthropic/index.ts";
import { type NatsServer, startNats } from "../world/nats.ts";
import {
  ADMIN_TOKEN,
  claimsFor,
  type EgressProc,
  PROVIDER_KEY,
  readRun,
  reserve,
  startEgress,
  tokenFor,
} from "./harness.ts";

// The egress gateway started while NATS is down: it serves, unready, refuses with 503 (which the SDK
// retries), and becomes ready once NATS is back; the ledger survives a NATS restart.
const body = JSON.stringify({
  model: "claude-sonnet-4-6",
  max_tokens: 100,
  system: "AgentFactory stage: write",
  messages: [{ role: "user", content: "Go." }],
});

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never: ${what}`);
}

describe("egress gateway and NATS", () => {
  let nats: NatsServer;
  let sim: ModelSim;
  let egress: EgressProc;
  let metricsUrl: string;

  beforeAll(async () => {
    nats = await startNats();
    await nats.kill();
    sim = await startModelSim({ apiKey: PROVIDER_KEY, scenario: { write: [turn(text("ok"))] } });
    egress = await startEgress({ ...nats.env("egress"), MODEL_BASE_URL: sim.url });
    const line = egress.entries().find((e) => e.event === "listening");
    metricsUrl = `http://127.0.0.1:${line?.metricsPort}`;
  });
  afterAll(async () => {
    await egress?.stop();
    await sim?.stop();
    await nats?.stop();
  });

  it("serves unready with 503s while NATS is down, and becomes ready when it is back", async () => {
    expect((await fetch(`${metricsUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${metricsUrl}/readyz`)).status).toBe(503);
    const claims = claimsFor({ namespace: "agents", name: "late", uid: "uid-late" });
    const token = await tokenFor(claims);
    const call = () =>
      fetch(`${egress.url}/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": token, "anthropic-version": "2023-06-01", "content-type": "application/json" },
        body,
      });
    const early = await call();
    expect(early.status).toBe(503);
    expect(await early.json()).toMatchObject({ type: "error", error: { type: "overloaded_error" } });
    const admin = await fetch(`${egress.adminUrl}/admin/v1/runs/agents/late`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(admin.status).toBe(503);
    expect(sim.requests).toHaveLength(0);

    await nats.restart();
    await until(async () => (await fetch(`${metricsUrl}/readyz`)).status === 200, "ready after NATS came up");
    await reserve(egress.adminUrl, claims, { budgetUsd: 1 });
    const res = await call();
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const spent = (await readRun(egress.adminUrl, claims.run)).spentUsd;
    expect(spent).toBeGreaterThan(0);

    // The ledger is JetStream file storage: a NATS restart keeps the spend.
    await nats.restart();
    await until(
      async () =>
        (
          await fetch(`${egress.adminUrl}/admin/v1/runs/agents/late`, {
            headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
          })
        ).status === 200,
      "ledger readable after the NATS restart",
    );
    expect((await readRun(egress.adminUrl, claims.run)).spentUsd).toBeCloseTo(spent, 12);
  });

  it("needed nothing of NATS beyond the egress user's permissions", () => {
    expect(nats.violations()).toEqual([]);
  });
});

import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { costUsd } from "../../core/pricing.ts";
import { EGRESS_LEDGER_BUCKET } from "../../core/streams.ts";
import { Ledger } from "../../egress/ledger.ts";
import { billed } from "../../egress/usage.ts";
import { type ModelSim, startModelSim, text, turn } from "../world/anthropic/index.ts";
import { type NatsServer, startNats } from "../world/nats.ts";
import { claimsFor, type EgressProc, PROVIDER_KEY, readRun, reserve, startEgress, tokenFor } from "./harness.ts";

// Two egress replicas sharing one ledger in a real nats-server: concurrent requests never take a
// run past its budget, and no charge is lost.
const MODEL = "claude-sonnet-4-6";
const payload = JSON.stringify({
  model: MODEL,
  max_tokens: 300,
  stream: true,
  system: "AgentFactory stage: write",
  messages: [{ role: "user", content: "Go." }],
});

describe("budget ledger", () => {
  let nats: NatsServer;
  let sim: ModelSim;
  let replicas: EgressProc[] = [];
  const connections: NatsConnection[] = [];

  beforeAll(async () => {
    nats = await startNats();
    sim = await startModelSim({ apiKey: PROVIDER_KEY, scenario: { write: [turn(text("ok ".repeat(150)))] } });
    replicas = await Promise.all([0, 1].map(() => startEgress({ ...nats.env("egress"), MODEL_BASE_URL: sim.url })));
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    for (const nc of connections) await nc.close();
    await sim?.stop();
    await nats?.stop();
  });

  it("two replicas under 40 concurrent requests never overspend and lose no charge", async () => {
    // Price one request as the simulator bills it.
    const probe = claimsFor({ namespace: "agents", name: "probe", uid: "probe-uid" });
    await reserve(replicas[0]!.adminUrl, probe, { budgetUsd: 1 });
    const probeToken = await tokenFor(probe);
    const first = await fetch(`${replicas[0]!.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": probeToken, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: payload,
    });
    await first.arrayBuffer();
    const one = costUsd(MODEL, billed(sim.requests.at(-1)?.usage));
    expect(one).toBeGreaterThan(0);

    const claims = claimsFor({ namespace: "agents", name: "race", uid: "race-uid" });
    const budgetUsd = one * 10.5;
    await reserve(replicas[1]!.adminUrl, claims, { budgetUsd });
    const token = await tokenFor(claims);
    const before = sim.requests.length;
    const send = async (replica: EgressProc) => {
      const res = await fetch(`${replica.url}/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": token, "anthropic-version": "2023-06-01", "content-type": "application/json" },
        body: payload,
      });
      return { status: res.status, bodyText: await res.text() };
    };
    // One request through each replica first: both charge the same entry.
    expect((await send(replicas[0]!)).status).toBe(200);
    expect((await send(replicas[1]!)).status).toBe(200);
    expect((await readRun(replicas[0]!.adminUrl, claims.run)).spentUsd).toBeCloseTo(2 * one, 12);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => send(replicas[i % 2]!)));
    const served = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 402);
    expect(served.length + refused.length).toBe(40);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]?.bodyText).toContain('"budget_exhausted"');
    // Every admitted request reached the model exactly once, none of the refused ones did.
    expect(sim.requests.length - before).toBe(served.length + 2);

    const run = await readRun(replicas[0]!.adminUrl, claims.run);
    expect(run.spentUsd).toBeLessThanOrEqual(budgetUsd);
    expect(run.spentUsd).toBeCloseTo((served.length + 2) * one, 12);
    expect(run.heldUsd).toBe(0);
    expect(run.stages.write).toMatchObject({ requests: served.length + 2, refused: refused.length });
    const sum = sim.requests.slice(before).reduce((usd, r) => usd + costUsd(MODEL, billed(r.usage)), 0);
    expect(run.spentUsd).toBeCloseTo(sum, 12);
  });

  it("the KV's compare-and-swap refuses a stale write, where a blind put would lose an update", async () => {
    // The test world's inspection user: the demo bucket is not the egress user's.
    const nc = await connect(nats.options("admin"));
    connections.push(nc);
    const kv = await new Kvm(nc).create("cas-demo");
    await kv.put("k", "0");
    // Two writers read the same revision, then both write.
    const [a, b] = await Promise.all([kv.get("k"), kv.get("k")]);
    await kv.update("k", "a", a!.revision);
    await expect(kv.update("k", "b", b!.revision)).rejects.toThrow(/wrong last sequence/);
    // Positive control: without the revision, the second write silently replaces the first.
    await kv.put("k", "b");
    expect((await kv.get("k"))?.string()).toBe("b");
  });

  it("releases a hold never settled (its replica died) after the hold timeout, and refuses over budget", async () => {
    const nc = await connect(nats.options("egress"));
    connections.push(nc);
    // A hold timeout of 0: every hold is already expired at the next change.
    const ledger = await Ledger.open(nc, { bucket: EGRESS_LEDGER_BUCKET, ttlMs: 3600_000, holdTimeoutMs: 0 });
    const claims = claimsFor({ namespace: "agents", name: "expiry", uid: "u2" });
    const r = {
      uid: "u2",
      budgetUsd: 1,
      stage: "write" as const,
      attempt: 1,
      repo: claims.repo,
      branch: claims.branch,
    };
    await ledger.reserve("agents", "expiry", r);
    expect((await ledger.hold(claims, 0.9)).ok).toBe(true);
    // Never settled; without expiry this would leave 0.1.
    expect((await ledger.hold(claims, 0.9)).ok).toBe(true);
    const live = await Ledger.open(nc, { bucket: EGRESS_LEDGER_BUCKET, ttlMs: 3600_000, holdTimeoutMs: 60_000 });
    const first = await live.hold(claims, 0.6);
    expect(first.ok).toBe(true);
    const second = await live.hold(claims, 0.6);
    expect(second).toMatchObject({ ok: false, reason: "budget_exhausted" });
    // Settling releases the hold and charges the actual cost.
    if (first.ok)
      await live.settle(claims, first.holdId, {
        usd: 0.25,
        tokens: { input: 1, output: 1, cacheRead: 0, cacheWrite: 0 },
      });
    expect((await live.hold(claims, 0.6)).ok).toBe(true);
    expect((await live.read("agents", "expiry"))?.spentUsd).toBeCloseTo(0.25, 12);
  });

  it("two ledger instances settling 100 charges concurrently keep the exact sum", async () => {
    const [nc1, nc2] = await Promise.all([connect(nats.options("egress")), connect(nats.options("egress"))]);
    connections.push(nc1, nc2);
    let conflicts = 0;
    const open = (nc: NatsConnection) =>
      Ledger.open(nc, {
        bucket: EGRESS_LEDGER_BUCKET,
        ttlMs: 3600_000,
        holdTimeoutMs: 60_000,
        onConflict: () => conflicts++,
      });
    const [l1, l2] = await Promise.all([open(nc1), open(nc2)]);
    const claims = claimsFor({ namespace: "agents", name: "settle-race", uid: "u1" });
    await l1.reserve("agents", "settle-race", {
      uid: "u1",
      budgetUsd: 100,
      stage: "write",
      attempt: 1,
      repo: claims.repo,
      branch: claims.branch,
    });
    const tokens = { input: 10, output: 5, cacheRead: 0, cacheWrite: 0 };
    await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const ledger = i % 2 ? l1 : l2;
        const held = await ledger.hold(claims, 0.02);
        if (!held.ok) throw new Error(held.reason);
        await ledger.settle(claims, held.holdId, { usd: 0.01, tokens });
      }),
    );
    const run = await l1.read("agents", "settle-race");
    expect(run?.spentUsd).toBeCloseTo(1, 9);
    expect(run?.stages.write?.requests).toBe(100);
    expect(run?.stages.write?.tokens.input).toBe(1000);
    expect(Object.keys(run?.holds ?? {})).toHaveLength(0);
    // The writers did collide; the retries are what kept the sum exact.
    expect(conflicts).toBeGreaterThan(0);
  });

  it("needed nothing of NATS beyond the egress user's permissions", () => {
    expect(nats.violations()).toEqual([]);
  });
});

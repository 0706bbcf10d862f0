import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { costUsd } from "../../core/pricing.ts";
import { billed } from "../../egress/usage.ts";
import { type ModelSim, startModelSim, text, turn } from "../world/anthropic/index.ts";
import { type NatsServer, startNats } from "../world/nats.ts";
import {
  ADMIN_TOKEN,
  ATTEMPT_KEY,
  claimsFor,
  type EgressProc,
  endAttempt,
  logged,
  PROVIDER_KEY,
  readRun,
  reserve,
  startEgress,
  tokenFor,
} from "./harness.ts";
import { type Exchange, startRecorder } from "./recorder.ts";

// The model proxy of the real egress gateway (egress/main.ts as a process) in front of the scripted
// Anthropic API, with its ledger in a real nats-server.
const MODEL = "claude-sonnet-4-6";
const ANSWER = "The fix is to return a + b instead of a - b. ".repeat(12);

const body = (extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  max_tokens: 400,
  system: "AgentFactory stage: write\nYou write code.",
  messages: [{ role: "user", content: "Fix add()." }],
  ...extra,
});

describe("egress model proxy", () => {
  let nats: NatsServer;
  let sim: ModelSim;
  let recorder: Awaited<ReturnType<typeof startRecorder>>;
  let egress: EgressProc;
  const issued: string[] = [];
  let runs = 0;
  /** A fresh run reserved with `budgetUsd`, and a token for its attempt. */
  async function freshRun(budgetUsd: number, over: Parameters<typeof claimsFor>[1] = {}) {
    runs++;
    const claims = claimsFor({ namespace: "agents", name: `calc-${runs}-0abc`, uid: `uid-${runs}` }, over);
    const { status } = await reserve(egress.adminUrl, claims, { budgetUsd });
    expect(status).toBe(200);
    const token = await tokenFor(claims);
    issued.push(token);
    return { claims, token };
  }
  const post = (token: string, payload: unknown, path = "/v1/messages") =>
    fetch(`${egress.url}${path}`, {
      method: "POST",
      headers: { "x-api-key": token, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify(payload),
    });
  const lastExchange = (): Exchange => recorder.exchanges[recorder.exchanges.length - 1] as Exchange;

  beforeAll(async () => {
    nats = await startNats();
    sim = await startModelSim({ apiKey: PROVIDER_KEY, scenario: { write: [turn(text(ANSWER))] } });
    recorder = await startRecorder(sim.url);
    egress = await startEgress({ ...nats.env("egress"), MODEL_BASE_URL: recorder.url });
  });
  afterAll(async () => {
    await egress?.stop();
    await recorder?.stop();
    await sim?.stop();
    await nats?.stop();
  });

  it("streams the response through byte for byte and charges the stream's usage to the run", async () => {
    const { claims, token } = await freshRun(1);
    const res = await post(token, body({ stream: true }));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const received = Buffer.from(await res.arrayBuffer());
    const upstream = lastExchange();
    expect(upstream.body.length).toBeGreaterThan(1000);
    expect(received.equals(upstream.body)).toBe(true);
    expect(received.toString()).toContain("event: message_delta");
    // The provider got its key, and never the attempt token.
    expect(upstream.headers["x-api-key"]).toBe(PROVIDER_KEY);
    expect(JSON.stringify(upstream.headers)).not.toContain(token);

    const usage = sim.requests[sim.requests.length - 1]?.usage;
    expect(usage?.output_tokens).toBeGreaterThan(100);
    const expected = costUsd(MODEL, billed(usage));
    const run = await readRun(egress.adminUrl, claims.run);
    expect(run.spentUsd).toBeCloseTo(expected, 12);
    expect(run.heldUsd).toBe(0);
    expect(run.stages.write).toMatchObject({
      requests: 1,
      tokens: { input: usage?.input_tokens, output: usage?.output_tokens },
    });
  });

  it("passes JSON responses through to the Anthropic SDK (create and stream) and charges both", async () => {
    const { claims, token } = await freshRun(1);
    const client = new Anthropic({ apiKey: token, baseURL: egress.url, maxRetries: 0 });
    const message = await client.messages.create(body() as Anthropic.MessageCreateParamsNonStreaming);
    expect(message.content[0]).toMatchObject({ type: "text", text: ANSWER });
    expect(lastExchange().body.equals(Buffer.from(JSON.stringify(message)))).toBe(true);
    const streamed = await client.messages.stream(body() as Anthropic.MessageCreateParamsNonStreaming).finalMessage();
    expect(streamed.usage.output_tokens).toBe(message.usage.output_tokens);
    const run = await readRun(egress.adminUrl, claims.run);
    const one = costUsd(MODEL, billed(message.usage));
    expect(run.spentUsd).toBeCloseTo(2 * one, 12);
    expect(run.stages.write?.requests).toBe(2);
  });

  it("refuses a request once the budget is spent, with an error the runner maps to BudgetExhausted", async () => {
    const one = costUsd(MODEL, billed(sim.requests[sim.requests.length - 1]?.usage));
    // Room for a few requests' actual cost, never for the last one's worst case.
    const { claims, token } = await freshRun(one * 3.5);
    const client = new Anthropic({ apiKey: token, baseURL: egress.url, maxRetries: 2 });
    const before = sim.requests.length;
    let served = 0;
    let refusal: unknown;
    for (let i = 0; i < 10 && !refusal; i++) {
      try {
        await client.messages.create(body() as Anthropic.MessageCreateParamsNonStreaming);
        served++;
      } catch (err) {
        refusal = err;
      }
    }
    expect(served).toBeGreaterThan(0);
    expect(refusal).toBeInstanceOf(Anthropic.APIError);
    const err = refusal as InstanceType<typeof Anthropic.APIError>;
    expect(err.status).toBe(402);
    expect(err.error).toMatchObject({ type: "error", error: { type: "budget_exhausted" } });
    expect(String((err.error as { error: { message: string } }).error.message)).toMatch(/budget is exhausted/);
    // The refused request never reached the model, and the SDK did not retry it.
    expect(sim.requests.length - before).toBe(served);
    const run = await readRun(egress.adminUrl, claims.run);
    expect(run.spentUsd).toBeLessThanOrEqual(run.budgetUsd);
    expect(run.spentUsd).toBeCloseTo(served * one, 12);
    expect(run.stages.write?.refused).toBe(1);
    expect(await egress.metrics()).toMatch(
      /agentfactory_egress_refused_total\{kind="model",reason="budget_exhausted"\} 1/,
    );

    // Positive control: the same request passes once the operator raises the budget.
    await reserve(egress.adminUrl, claims, { budgetUsd: 1 });
    await expect(client.messages.create(body() as Anthropic.MessageCreateParamsNonStreaming)).resolves.toBeTruthy();
  });

  it("refuses expired, forged, foreign and finished attempts' tokens before reaching the model", async () => {
    const { claims, token } = await freshRun(1);
    const before = sim.requests.length;
    const expect401 = async (t: string, message: RegExp) => {
      const res = await post(t, body());
      expect(res.status).toBe(401);
      const json = (await res.json()) as { type: string; error: { type: string; message: string } };
      expect(json).toMatchObject({ type: "error", error: { type: "authentication_error" } });
      expect(json.error.message).toMatch(message);
    };
    await expect401(await tokenFor(claims, { now: new Date(Date.now() - 3600_000), ttlSeconds: 600 }), /expired/);
    await expect401(await tokenFor(claims, { key: "another-key-of-the-right-size-0123456789" }), /signature/);
    await expect401(await tokenFor({ ...claims, run: { ...claims.run, name: "never-reserved" } }), /not active/);
    // Same name, another uid: a deleted and recreated run's old token.
    await expect401(await tokenFor({ ...claims, run: { ...claims.run, uid: "old-uid" } }), /not active/);
    await expect401(PROVIDER_KEY, /not valid/);
    // A retry of the stage supersedes attempt 1.
    const second = { ...claims, attempt: 2 };
    await reserve(egress.adminUrl, second, { budgetUsd: 1 });
    await expect401(token, /not active/);
    const secondToken = await tokenFor(second);
    issued.push(secondToken);
    expect((await post(secondToken, body())).status).toBe(200);
    // The operator ends the attempt when its Job finished.
    expect(await endAttempt(egress.adminUrl, second)).toBe(200);
    await expect401(secondToken, /not active/);
    expect(sim.requests.length - before).toBe(1);
    expect((await post("", body())).status).toBe(401);
  });

  it("passes count_tokens through without charging", async () => {
    const { claims, token } = await freshRun(1);
    const res = await post(
      token,
      { model: MODEL, messages: body().messages, system: body().system },
      "/v1/messages/count_tokens",
    );
    expect(res.status).toBe(200);
    expect(((await res.json()) as { input_tokens: number }).input_tokens).toBeGreaterThan(0);
    expect((await readRun(egress.adminUrl, claims.run)).spentUsd).toBe(0);
  });

  it("keeps the admin API for the operator and refuses anything but the model and forge", async () => {
    const { claims, token } = await freshRun(1);
    const put = (auth: string) =>
      fetch(`${egress.adminUrl}/admin/v1/runs/agents/${claims.run.name}/stages/write`, {
        method: "PUT",
        headers: { authorization: auth, "content-type": "application/json" },
        body: JSON.stringify({
          uid: claims.run.uid,
          budgetUsd: 1000,
          attempt: 1,
          repo: "acme/calc",
          branch: "agent/1-x",
        }),
      });
    expect((await put(`Bearer ${token}`)).status).toBe(401);
    expect((await put(`Bearer ${ATTEMPT_KEY}`)).status).toBe(401);
    expect((await put(`Bearer ${ADMIN_TOKEN}`)).status).toBe(200);
    // The operator forgets a deleted run.
    const runUrl = `${egress.adminUrl}/admin/v1/runs/agents/${claims.run.name}`;
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    expect((await fetch(runUrl, { method: "DELETE", headers: admin })).status).toBe(204);
    expect((await fetch(runUrl, { headers: admin })).status).toBe(404);
    expect((await post(token, body())).status).toBe(401);
    expect((await put(`Bearer ${ADMIN_TOKEN}`)).status).toBe(200);
    // The runner-facing port does not serve the admin API.
    const viaProxy = await fetch(`${egress.url}/admin/v1/runs/agents/${claims.run.name}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(viaProxy.status).toBe(403);
    const other = await fetch(`${egress.url}/v1/complete`, { method: "POST", headers: { "x-api-key": token } });
    expect(other.status).toBe(403);
    await logged(egress, (e) => e.kind === "other" && e.decision === "refused" && e.path === "/v1/complete");
  });

  it("logs every request with run, stage, host, bytes and decision, and never a credential", async () => {
    const line = await logged(egress, (e) => e.kind === "model" && e.decision === "allowed" && e.stream === true);
    expect(line).toMatchObject({ run: expect.stringMatching(/^agents\//), stage: "write", status: 200 });
    expect(line.bytesDown).toBeGreaterThan(1000);
    expect(line.host).toBe(new URL(recorder.url).host);
    const all = egress.logs.join("\n");
    expect(all).not.toContain(PROVIDER_KEY);
    expect(all).not.toContain(ADMIN_TOKEN);
    expect(all).not.toContain(ATTEMPT_KEY);
    expect(issued.length).toBeGreaterThan(5);
    for (const t of issued) expect(all).not.toContain(t);
  });

  it("needed nothing of NATS beyond the egress user's permissions", () => {
    expect(nats.violations()).toEqual([]);
  });
});

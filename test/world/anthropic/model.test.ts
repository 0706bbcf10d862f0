import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lastToolResults, type ModelSim, startModelSim, text, toolUse, turn } from "./index.ts";

const READ = {
  name: "Read",
  description: "Read a file",
  input_schema: { type: "object" as const, properties: { file_path: { type: "string" } }, required: ["file_path"] },
};
const VERDICT = {
  name: "submit_verdict",
  description: "Report the triage verdict",
  input_schema: { type: "object" as const, properties: { clear: { type: "boolean" } }, required: ["clear"] },
};
const MODEL = "claude-sonnet-4-6";

let sim: ModelSim;
let client: Anthropic;

beforeAll(async () => {
  sim = await startModelSim({
    scenario: {
      triage: [
        turn(text("Let me read the guide."), toolUse("Read", { file_path: "CLAUDE.md" })),
        (req) => {
          const [result] = lastToolResults(req);
          return turn(text(`The guide says: ${result?.content}`));
        },
      ],
      verdict: [turn(toolUse("submit_verdict", { clear: true }))],
      wrong: [turn(text("no tool here"))],
      cached: [turn(text("one")), turn(text("two"))],
      flaky: [turn(text("finally"))],
      badinput: [turn(toolUse("submit_verdict", { clear: "yes" }))],
      long: [turn(text("word ".repeat(400)), toolUse("Read", { file_path: "a" }))],
    },
    failures: [
      { status: 429, times: 1, stage: "flaky" },
      { status: 529, times: 1, stage: "flaky" },
    ],
  });
  client = new Anthropic({ apiKey: "sk-ant-test", baseURL: sim.url, maxRetries: 2 });
});

afterAll(async () => {
  await sim?.stop();
});

describe("scripted Messages API with the real SDK", () => {
  it("runs a tool loop: tool_use, then a dynamic turn that reads the tool_result", async () => {
    const system = "AgentFactory stage: triage\nYou triage tickets.";
    const messages: Anthropic.MessageParam[] = [{ role: "user", content: "Triage issue #1" }];
    const first = await client.messages.create({ model: MODEL, max_tokens: 1024, system, tools: [READ], messages });
    expect(first).toMatchObject({ type: "message", role: "assistant", model: MODEL, stop_reason: "tool_use" });
    expect(first.id).toMatch(/^msg_/);
    const use = first.content.find((b) => b.type === "tool_use");
    expect(use).toMatchObject({ name: "Read", input: { file_path: "CLAUDE.md" } });
    expect(use?.id).toMatch(/^toolu_/);
    expect(first.usage.input_tokens).toBeGreaterThan(0);
    expect(first.usage.output_tokens).toBeGreaterThan(0);
    expect(first.usage.cache_creation).toEqual({ ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 });

    messages.push({ role: "assistant", content: first.content });
    messages.push({ role: "user", content: [{ type: "tool_result", tool_use_id: use!.id, content: "Use tabs." }] });
    const second = await client.messages.create({ model: MODEL, max_tokens: 1024, system, tools: [READ], messages });
    expect(second.stop_reason).toBe("end_turn");
    expect(second.content).toEqual([{ type: "text", text: "The guide says: Use tabs." }]);
    expect(sim.requests.filter((r) => r.stage === "triage").map((r) => r.turn)).toEqual([0, 1]);

    // Forgetting the tool_result is refused like the real API does.
    const bad = client.messages.create({
      model: MODEL,
      max_tokens: 1024,
      system,
      tools: [READ],
      messages: [...messages.slice(0, 2), { role: "user", content: "next" }],
    });
    await expect(bad).rejects.toMatchObject({ status: 400, error: { error: { type: "invalid_request_error" } } });
    await expect(bad).rejects.toThrow(/tool_use` ids were found without `tool_result`/);
  });

  it("honours a forced tool_choice and rejects a script that ignores it", async () => {
    const forced = await client.messages.create({
      model: MODEL,
      max_tokens: 256,
      system: [{ type: "text", text: "AgentFactory stage: verdict\nDecide." }],
      tools: [READ, VERDICT],
      tool_choice: { type: "tool", name: "submit_verdict" },
      messages: [{ role: "user", content: "go" }],
    });
    expect(forced.content[0]).toMatchObject({ type: "tool_use", name: "submit_verdict", input: { clear: true } });
    await expect(
      client.messages.create({
        model: MODEL,
        max_tokens: 256,
        system: "AgentFactory stage: wrong",
        tools: [VERDICT],
        tool_choice: { type: "tool", name: "submit_verdict" },
        messages: [{ role: "user", content: "go" }],
      }),
    ).rejects.toMatchObject({ status: 400 });
  });

  it("refuses scripted tool inputs that break the tool's schema, and truncates at max_tokens", async () => {
    const bad = client.messages.create({
      model: MODEL,
      max_tokens: 256,
      system: "AgentFactory stage: badinput",
      tools: [VERDICT],
      messages: [{ role: "user", content: "go" }],
    });
    await expect(bad).rejects.toThrow(/does not match its input_schema/);
    const cut = await client.messages.create({
      model: MODEL,
      max_tokens: 100,
      system: "AgentFactory stage: long",
      tools: [READ],
      messages: [{ role: "user", content: "go" }],
    });
    expect(cut.stop_reason).toBe("max_tokens");
    expect(cut.usage.output_tokens).toBe(100);
    expect(cut.content.map((b) => b.type)).toEqual(["text"]);
  });

  it("bills cache writes then cache reads for a repeated prefix, split by TTL", async () => {
    const big = "Project rules. ".repeat(600); // ~2250 tokens
    const system: Anthropic.TextBlockParam[] = [
      { type: "text", text: "AgentFactory stage: cached" },
      { type: "text", text: big, cache_control: { type: "ephemeral", ttl: "1h" } },
    ];
    const a = await client.messages.create({
      model: MODEL,
      max_tokens: 100,
      system,
      messages: [{ role: "user", content: "first" }],
    });
    expect(a.usage.cache_read_input_tokens).toBe(0);
    expect(a.usage.cache_creation_input_tokens).toBeGreaterThan(2000);
    expect(a.usage.cache_creation?.ephemeral_1h_input_tokens).toBe(a.usage.cache_creation_input_tokens);
    expect(a.usage.input_tokens).toBeLessThan(20);

    const b = await client.messages.create({
      model: MODEL,
      max_tokens: 100,
      system,
      messages: [
        { role: "user", content: "first" },
        { role: "assistant", content: a.content },
        { role: "user", content: [{ type: "text", text: "second", cache_control: { type: "ephemeral" } }] },
      ],
    });
    expect(b.usage.cache_read_input_tokens).toBe(a.usage.cache_creation_input_tokens);
    expect(b.usage.cache_creation?.ephemeral_5m_input_tokens).toBe(b.usage.cache_creation_input_tokens);
    expect(b.usage.cache_creation_input_tokens).toBeGreaterThan(0);
    expect(b.usage.input_tokens).toBe(0);
    const totals = sim.usageTotals("cached");
    expect(totals.cache_read_input_tokens).toBe(b.usage.cache_read_input_tokens);
    expect(totals.requests).toBe(2);

    // Below the minimum cacheable length nothing is cached.
    const small = await client.messages.create({
      model: MODEL,
      max_tokens: 100,
      system: [{ type: "text", text: "AgentFactory stage: cached\nshort", cache_control: { type: "ephemeral" } }],
      messages: [{ role: "user", content: "hi" }],
    });
    expect(small.usage.cache_creation_input_tokens).toBe(0);
  });

  it("answers 429 then 529 with the real error shape; the SDK's retries get the response", async () => {
    const msg = await client.messages.create({
      model: MODEL,
      max_tokens: 100,
      system: "AgentFactory stage: flaky",
      messages: [{ role: "user", content: "hello" }],
    });
    expect(msg.content).toEqual([{ type: "text", text: "finally" }]);
    expect(sim.requests.filter((r) => r.stage === "flaky").map((r) => r.status)).toEqual([429, 529, 200]);
    expect(sim.requests.find((r) => r.status === 429)?.error).toMatch(/rate limit/);
  });

  it("streams the same message as server-sent events", async () => {
    const stream = client.messages.stream({
      model: MODEL,
      max_tokens: 256,
      system: "AgentFactory stage: verdict",
      tools: [VERDICT],
      messages: [{ role: "user", content: "go" }],
    });
    const final = await stream.finalMessage();
    expect(final.content[0]).toMatchObject({ type: "tool_use", name: "submit_verdict", input: { clear: true } });
    expect(final.stop_reason).toBe("tool_use");
  });

  it("speaks the Bedrock and Vertex dialects (model in the path, version in the body)", async () => {
    const { default: AnthropicBedrock } = await import("@anthropic-ai/bedrock-sdk");
    const bedrock = new AnthropicBedrock({
      awsRegion: "us-east-1",
      awsAccessKey: "AKIAEXAMPLE",
      awsSecretKey: "secret",
      baseURL: sim.url,
      maxRetries: 0,
    });
    const viaBedrock = await bedrock.messages.create({
      model: "anthropic.claude-sonnet-4-6",
      max_tokens: 256,
      system: "AgentFactory stage: verdict",
      tools: [VERDICT],
      messages: [{ role: "user", content: "go" }],
    });
    expect(viaBedrock.content[0]).toMatchObject({ type: "tool_use", name: "submit_verdict" });

    const { default: AnthropicVertex } = await import("@anthropic-ai/vertex-sdk");
    const authClient = {
      projectId: "p1",
      getRequestHeaders: async () => new Headers({ authorization: "Bearer ya29.test" }),
    };
    const vertex = new AnthropicVertex({
      region: "us-east5",
      projectId: "p1",
      baseURL: `${sim.url}/v1`,
      maxRetries: 0,
      authClient: authClient as never,
    });
    const viaVertex = await vertex.messages.create({
      model: "claude-sonnet-4-6",
      max_tokens: 256,
      system: "AgentFactory stage: verdict",
      tools: [VERDICT],
      messages: [{ role: "user", content: "go" }],
    });
    expect(viaVertex.model).toBe("claude-sonnet-4-6");
    const providers = sim.requests.filter((r) => r.stage === "verdict").map((r) => r.provider);
    expect(providers).toEqual(expect.arrayContaining(["bedrock", "vertex"]));
  });

  it("requires an API key and the anthropic-version header", async () => {
    const res = await fetch(`${sim.url}/v1/messages`, { method: "POST", body: "{}" });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ type: "error", error: { type: "authentication_error" } });
  });
});

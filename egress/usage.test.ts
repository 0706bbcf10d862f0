import { describe, expect, it } from "vitest";
import { billed, jsonUsage, SseUsageReader } from "./usage.ts";

const sse = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

describe("SseUsageReader", () => {
  const stream = [
    sse("message_start", {
      message: {
        model: "claude-sonnet-4-5",
        usage: {
          input_tokens: 100,
          output_tokens: 1,
          cache_read_input_tokens: 50,
          cache_creation_input_tokens: 20,
          cache_creation: { ephemeral_5m_input_tokens: 20, ephemeral_1h_input_tokens: 0 },
        },
      },
    }),
    sse("ping", {}),
    sse("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
    sse("content_block_delta", { index: 0, delta: { type: "text_delta", text: 'a "message_delta" mention' } }),
    sse("message_delta", { delta: { stop_reason: "end_turn" }, usage: { output_tokens: 42 } }),
    sse("message_stop", {}),
  ].join("");

  it("reads start and final usage, whatever the chunking", () => {
    for (const size of [1, 3, 7, 64, stream.length]) {
      const reader = new SseUsageReader();
      const bytes = Buffer.from(stream);
      for (let at = 0; at < bytes.length; at += size) reader.push(bytes.subarray(at, at + size));
      reader.end();
      expect(reader.model).toBe("claude-sonnet-4-5");
      expect(reader.complete).toBe(true);
      expect(billed(reader.usage)).toEqual({
        input: 100,
        output: 42,
        cacheRead: 50,
        cacheWrite5m: 20,
        cacheWrite1h: 0,
      });
    }
  });

  it("handles CRLF framing and events without an event line", () => {
    const reader = new SseUsageReader();
    reader.push(Buffer.from(`data: {"type":"message_start","message":{"usage":{"input_tokens":7}}}\r\n\r\n`));
    reader.push(Buffer.from(`data: {"type":"message_delta","usage":{"output_tokens":3,"input_tokens":9}}\r\n\r\n`));
    reader.end();
    expect(billed(reader.usage)).toMatchObject({ input: 9, output: 3 });
  });

  it("reports an incomplete stream (no message_delta) as such", () => {
    const reader = new SseUsageReader();
    reader.push(Buffer.from(stream.slice(0, stream.indexOf("event: message_delta"))));
    reader.end();
    expect(reader.complete).toBe(false);
    expect(billed(reader.usage).input).toBe(100);
  });
});

describe("billed", () => {
  it("splits cache writes by TTL, or attributes the total to the requested TTL", () => {
    expect(billed({ cache_creation_input_tokens: 30 }, "1h")).toMatchObject({ cacheWrite5m: 0, cacheWrite1h: 30 });
    expect(billed({ cache_creation_input_tokens: 30 })).toMatchObject({ cacheWrite5m: 30, cacheWrite1h: 0 });
    expect(billed({ input_tokens: -5, output_tokens: null })).toMatchObject({ input: 0, output: 0 });
  });
  it("reads a JSON response's usage and model", () => {
    expect(jsonUsage('{"model":"m","usage":{"input_tokens":1,"output_tokens":2}}')).toEqual({
      model: "m",
      usage: { input_tokens: 1, output_tokens: 2 },
    });
    expect(jsonUsage("not json")).toEqual({});
  });
});

import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import { limitBody } from "./body-limit.ts";

function app() {
  const hono = new Hono();
  hono.post("/", limitBody(10), async (c) => c.text(await c.req.text()));
  hono.onError((err, c) => (err instanceof HTTPException ? c.text(err.message, err.status) : c.text("boom", 500)));
  return hono;
}

describe("limitBody", () => {
  it("passes a body within the limit", async () => {
    const res = await app().request("/", { method: "POST", body: "0123456789", headers: { "content-length": "10" } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("0123456789");
  });

  it.each([
    ["a Content-Length over the limit", { "content-length": "11" }],
    ["a malformed Content-Length", { "content-length": "1e3" }],
  ])("answers 413 to %s", async (_name, headers) => {
    const res = await app().request("/", { method: "POST", body: "01234567890", headers });
    expect(res.status).toBe(413);
  });

  it("counts the bytes of a body without Content-Length (chunked)", async () => {
    const stream = (chunks: string[]) =>
      new ReadableStream({
        start(controller) {
          for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
          controller.close();
        },
      });
    const init = (chunks: string[]) => ({ method: "POST", body: stream(chunks), duplex: "half" }) as RequestInit;
    expect((await app().request("/", init(["01234", "56789", "0"]))).status).toBe(413);
    const ok = await app().request("/", init(["01234", "5678"]));
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe("012345678");
  });
});

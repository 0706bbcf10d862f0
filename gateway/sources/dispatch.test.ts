import { describe, expect, it } from "vitest";
import { FakePublisher, memoryLogger } from "../../test/gateway/fakes.ts";
import { createApp } from "../app.ts";

const TOKEN = "dispatch-token-0123456789";

function setup() {
  const publisher = new FakePublisher();
  const app = createApp({
    publisher,
    logger: memoryLogger().logger,
    config: { dispatch: { token: TOKEN }, bodyLimitBytes: 4096 },
  });
  const dispatch = (body: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) =>
    app.request("/dispatch", {
      method: "POST",
      body: typeof body === "string" ? body : JSON.stringify(body),
      headers: { "content-type": "application/json", ...headers },
    });
  return { publisher, dispatch };
}

describe("POST /dispatch", () => {
  it("answers the ticket id after publishing", async () => {
    const { dispatch, publisher } = setup();
    const res = await dispatch({ repo: "acme/widgets", title: "Add CSV export", body: "As a user…", number: 12 });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect(id).toMatch(/^dispatch:[0-9a-f-]{36}$/);
    expect(publisher.published[0]).toMatchObject({
      id,
      kind: "new",
      source: "dispatch",
      repo: "acme/widgets",
      number: 12,
      workItem: "gh-12",
      author: "dispatch",
    });
  });

  it("uses Idempotency-Key as the delivery id, so a retried request publishes once", async () => {
    const { dispatch, publisher } = setup();
    const headers = { authorization: `Bearer ${TOKEN}`, "idempotency-key": "job-7" };
    const first = await dispatch({ repo: "acme/widgets", title: "T" }, headers);
    const second = await dispatch({ repo: "acme/widgets", title: "T" }, headers);
    expect(await first.json()).toMatchObject({ id: "dispatch:job-7", duplicate: false });
    expect(await second.json()).toMatchObject({ id: "dispatch:job-7", duplicate: true });
    expect(publisher.published).toHaveLength(1);
    expect(publisher.published[0]?.workItem).toBe("dispatch-job-7");
  });

  it("steers runs too (kind cancel with a work item)", async () => {
    const { dispatch, publisher } = setup();
    await dispatch({ repo: "acme/widgets", title: "stop", kind: "cancel", workItem: "gh-3" });
    expect(publisher.published[0]).toMatchObject({ kind: "cancel", workItem: "gh-3" });
  });

  it.each([
    ["no Authorization", {}],
    ["a wrong token", { authorization: "Bearer nope" }],
    ["a token prefix", { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
    ["a longer token", { authorization: `Bearer ${TOKEN}x` }],
    ["Basic auth", { authorization: `Basic ${TOKEN}` }],
    ["the bare token", { authorization: TOKEN }],
  ])("answers 401 to %s", async (_name, headers) => {
    const { dispatch, publisher } = setup();
    expect((await dispatch({ repo: "acme/widgets", title: "T" }, headers)).status).toBe(401);
    expect(publisher.published).toHaveLength(0);
  });

  it.each([
    ["non-JSON", "repo=acme"],
    ["a missing title", { repo: "acme/widgets" }],
    ["a malformed repo", { repo: "acme", title: "T" }],
    ["an unknown kind", { repo: "acme/widgets", title: "T", kind: "delete" }],
    ["a negative number", { repo: "acme/widgets", title: "T", number: -1 }],
  ])("answers 400 to %s", async (_name, body) => {
    const { dispatch, publisher } = setup();
    expect((await dispatch(body)).status).toBe(400);
    expect(publisher.published).toHaveLength(0);
  });

  it("answers 400 to a malformed Idempotency-Key and 413 to an oversized body", async () => {
    const { dispatch } = setup();
    const bad = await dispatch(
      { repo: "a/b", title: "T" },
      { authorization: `Bearer ${TOKEN}`, "idempotency-key": "a b" },
    );
    expect(bad.status).toBe(400);
    expect((await dispatch({ repo: "a/b", title: "T", body: "x".repeat(5000) })).status).toBe(413);
  });
});

import { describe, expect, it } from "vitest";
import { clickUpClient } from "./clickup-api.ts";

const respond = (status: number, body: unknown) => async () =>
  new Response(typeof body === "string" ? body : JSON.stringify(body), { status });

describe("clickUpClient", () => {
  it("GETs /task/{id} with the token as Authorization (no Bearer) and parses the task", async () => {
    const seen: { url: string; auth: string | null }[] = [];
    const client = clickUpClient({
      apiUrl: "http://clickup.test/api/v2/",
      token: "pk_123",
      fetch: async (url, init) => {
        seen.push({ url: String(url), auth: new Headers(init?.headers).get("authorization") });
        return new Response(JSON.stringify({ id: "86a", name: "T", description: null, list: { id: "9" } }));
      },
    });
    const task = await client.getTask("86a");
    expect(seen).toEqual([{ url: "http://clickup.test/api/v2/task/86a", auth: "pk_123" }]);
    expect(task).toMatchObject({ id: "86a", name: "T", list: { id: "9" }, tags: [], custom_fields: [] });
  });

  it("answers undefined for a task that does not exist", async () => {
    const client = clickUpClient({ apiUrl: "http://c", token: "t", fetch: respond(404, { err: "Task not found" }) });
    expect(await client.getTask("x")).toBeUndefined();
  });

  it.each([
    ["a 500", respond(500, "oops")],
    ["a 401", respond(401, { err: "Token invalid" })],
    ["an unexpected shape", respond(200, { nope: true })],
    ["a network error", async () => Promise.reject(new TypeError("fetch failed"))],
  ])("throws Unavailable on %s", async (_name, fetchImpl) => {
    const client = clickUpClient({ apiUrl: "http://c", token: "t", fetch: fetchImpl as typeof fetch });
    await expect(client.getTask("x")).rejects.toMatchObject({ name: "Unavailable", dependency: "clickup" });
  });
});

import { createHmac } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type ClickUpSim, clickUpDelivery, signClickUp, startClickUpSim, taskTagUpdated } from "./index.ts";

let cu: ClickUpSim;
beforeAll(async () => {
  cu = await startClickUpSim({
    token: "pk_42_SECRET",
    tasks: [
      {
        id: "86a1b2c3d",
        name: "Add CSV export",
        description: "Export orders as CSV",
        tags: ["ai-agent"],
        customFields: [{ name: "Repository", value: "acme/shop" }],
      },
    ],
  });
});
afterAll(async () => {
  await cu?.stop();
});

it("serves a task to the raw token and refuses a Bearer token", async () => {
  const ok = await fetch(`${cu.apiUrl}/task/86a1b2c3d`, { headers: { authorization: "pk_42_SECRET" } });
  expect(ok.status).toBe(200);
  expect(await ok.json()).toMatchObject({
    id: "86a1b2c3d",
    name: "Add CSV export",
    text_content: "Export orders as CSV",
    url: "https://app.clickup.com/t/86a1b2c3d",
    list: { id: "901100000001" },
    tags: [{ name: "ai-agent" }],
    custom_fields: [{ name: "Repository", type: "short_text", value: "acme/shop" }],
  });
  const bearer = await fetch(`${cu.apiUrl}/task/86a1b2c3d`, { headers: { authorization: "Bearer pk_42_SECRET" } });
  expect(bearer.status).toBe(401);
  expect(await bearer.json()).toEqual({ err: "Token invalid", ECODE: "OAUTH_025" });
  const missing = await fetch(`${cu.apiUrl}/task/nope`, { headers: { authorization: "pk_42_SECRET" } });
  expect(missing.status).toBe(404);
});

it("records comments", async () => {
  const res = await fetch(`${cu.apiUrl}/task/86a1b2c3d/comment`, {
    method: "POST",
    headers: { authorization: "pk_42_SECRET", "content-type": "application/json" },
    body: JSON.stringify({ comment_text: "✅ PR ready for review", notify_all: false }),
  });
  expect(res.status).toBe(200);
  expect(await res.json()).toHaveProperty("hist_id");
  expect(cu.comments).toEqual([{ taskId: "86a1b2c3d", comment_text: "✅ PR ready for review", notify_all: false }]);
});

it("builds a taskTagUpdated payload with `after` as an array, signed as lower-case hex", () => {
  const payload = taskTagUpdated({ taskId: "86a1b2c3d", tags: ["ai-agent"] });
  expect(payload.event).toBe("taskTagUpdated");
  expect(Array.isArray(payload.history_items[0]?.after)).toBe(true);
  expect(payload.history_items[0]).toMatchObject({ field: "tag", after: [{ name: "ai-agent" }] });
  const { body, headers } = clickUpDelivery("s3cret", payload);
  expect(headers["x-signature"]).toBe(createHmac("sha256", "s3cret").update(body).digest("hex"));
  expect(signClickUp("s3cret", body)).toMatch(/^[0-9a-f]{64}$/);
});

import { IncomingWebhook } from "@slack/webhook";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type SlackSim, startSlackSim } from "./index.ts";

let slack: SlackSim;
beforeAll(async () => {
  slack = await startSlackSim({ failures: [{ status: 500, times: 1 }] });
});
afterAll(async () => {
  await slack?.stop();
});

it("records text and blocks posted with @slack/webhook, retrying a transient 500", async () => {
  const hook = new IncomingWebhook(slack.url, { retryConfig: { retries: 2, minTimeout: 10, factor: 1 } });
  const result = await hook.send({
    text: '🛑 *PR needs human review* — "quotes" survive',
    blocks: [{ type: "section", text: { type: "mrkdwn", text: "<http://pr|#3>" } }],
  });
  expect(result.text).toBe("ok");
  expect(slack.messages).toEqual([
    {
      text: '🛑 *PR needs human review* — "quotes" survive',
      blocks: [{ type: "section", text: { type: "mrkdwn", text: "<http://pr|#3>" } }],
    },
  ]);
  expect(slack.requests.map((r) => r.status)).toEqual([500, 200]);
});

it("refuses empty messages and unknown webhook paths like Slack", async () => {
  const empty = await fetch(slack.url, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  expect([empty.status, await empty.text()]).toEqual([400, "no_text"]);
  const wrong = await fetch(`${slack.url}x`, { method: "POST", body: '{"text":"hi"}' });
  expect(wrong.status).toBe(404);
  expect(slack.messages).toHaveLength(1);
});

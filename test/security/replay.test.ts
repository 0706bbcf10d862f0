/**
 * Issue 14, item 8: a captured signed webhook, replayed under a new X-GitHub-Delivery, must not start a
 * new run. Played against the real gateway process (gateway/main.ts), real NATS JetStream and the real
 * operator: the labeling's run finishes, then the attacker sends the same signed body again (minutes
 * later under a fresh delivery id, and days later). The ticket id comes from the signed event, so the
 * broker drops the replay inside its 73-hour window, and an event older than 72 hours is refused (422).
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTerminal } from "../../core/agentrun.ts";
import { TICKETS_STREAM } from "../../core/streams.ts";
import type { Proc } from "../e2e/world.ts";
import type { Harness } from "../operator/harness.ts";
import { type GitHubSim, githubDelivery, issuesLabeled } from "../world/github/index.ts";
import { type GatewayWorld, startGatewayWorld } from "./gateway-world.ts";

const SECRET = "replay-webhook-secret";
const REPO = "acme/replay";
let gh: GitHubSim;
let h: Harness;
let gateway: Proc;

const post = (d: { body: string; headers: Record<string, string> }) =>
  fetch(`${gateway.url}/webhooks/github`, { method: "POST", headers: d.headers, body: d.body });
/** Tickets the broker holds, looked at as the test world's inspection user. */
const stored = async () => {
  const nc = await connect(h.nats.options("admin"));
  try {
    return (await (await jetstreamManager(nc)).streams.info(TICKETS_STREAM)).state.messages;
  } finally {
    await nc.close();
  }
};
const githubTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const runsOf = (number: number) => h.runs().filter((r) => r.spec.ticket.number === number);

let world: GatewayWorld;
beforeAll(async () => {
  world = await startGatewayWorld({
    repo: REPO,
    secret: SECRET,
    users: { alice: "write" },
    script: ({ stage }) => ({ result: { stage: stage as "triage", outcome: "failed", summary: "cannot" } }),
  });
  ({ gh, h, gateway } = world);
}, 90_000);

afterAll(async () => {
  await world?.stop();
});

describe("a replayed signed webhook", () => {
  it("starts no second run under a new delivery id, after the first run ended", async () => {
    const issue = gh.createIssue(REPO, { title: "Add /healthz", user: "mallory", labels: ["ai-agent"] });
    const scope = { repo: REPO, installationId: gh.installationId, sender: "alice", serverUrl: gh.serverUrl };
    const labeled = issuesLabeled(scope, issue, "ai-agent");
    const captured = githubDelivery(SECRET, "issues", labeled, "delivery-original");
    const first = await post(captured);
    expect(first.status).toBe(202);
    expect(await first.json()).toMatchObject({ duplicate: false });
    const done = await h.waitFor("the labeling's run to end", () => {
      const r = runsOf(issue.number)[0];
      return r && isTerminal(r.status?.phase) ? r : undefined;
    });
    expect(done.status?.phase).toBe("Failed");
    const before = await stored();

    // The attacker replays the captured body and signature under a new delivery id.
    const replay = await post({
      ...captured,
      headers: { ...captured.headers, "x-github-delivery": "delivery-forged" },
    });
    expect(replay.status).toBe(202);
    expect(await replay.json()).toMatchObject({ duplicate: true });
    expect(await stored()).toBe(before); // the broker kept nothing: no ticket can reach the operator

    // Positive control: a genuinely new labeling of the same issue (a later event) does start a run,
    // through the same gateway, broker and operator.
    const later = issuesLabeled(scope, issue, "ai-agent");
    later.issue.updated_at = githubTime(Date.parse(labeled.issue.updated_at) + 60_000);
    const relabel = await post(githubDelivery(SECRET, "issues", later, "delivery-relabel"));
    expect(await relabel.json()).toMatchObject({ duplicate: false });
    await h.waitFor("the new labeling's run", () => runsOf(issue.number).length === 2);
    expect(await stored()).toBe(before + 1);
    expect(runsOf(issue.number).map((r) => r.spec.ticket.id)).not.toContain("github:delivery-forged");
  });

  it("refuses a signed event older than 72 hours with 422, counted as stale", async () => {
    const issue = gh.createIssue(REPO, { title: "Old", user: "mallory", labels: ["ai-agent"] });
    const scope = { repo: REPO, installationId: gh.installationId, sender: "alice", serverUrl: gh.serverUrl };
    const payload = issuesLabeled(scope, issue, "ai-agent");
    payload.issue.updated_at = githubTime(Date.now() - 73 * 3600_000);
    const before = await stored();
    const res = await post(githubDelivery(SECRET, "issues", payload, "delivery-days-later"));
    expect(res.status).toBe(422);
    expect(await stored()).toBe(before);
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(/agentfactory_webhooks_total\{source="github",event="[^"]*",result="stale"\} 1/);
    // Positive control: the same event an hour old is accepted.
    payload.issue.updated_at = githubTime(Date.now() - 3600_000);
    expect((await post(githubDelivery(SECRET, "issues", payload, "delivery-fresh"))).status).toBe(202);
  });
});

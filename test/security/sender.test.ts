/**
 * Issue 14, item 10 (the gateway's App key): the internet-facing gateway holds no GitHub App
 * credential, so who may start or steer a run is checked by the operator, which has the key. Played
 * through the real gateway process (started without any App key), NATS and the real operator against
 * the GitHub simulator: a reader's labeling and a stranger's command reach the operator and are
 * refused there (no run, counted as refused), while a maintainer's labeling starts a run.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Harness } from "../operator/harness.ts";
import { type GitHubSim, issueCommentCreated, issuesLabeled } from "../world/github/index.ts";
import { type GatewayWorld, startGatewayWorld } from "./gateway-world.ts";

const SECRET = "sender-webhook-secret";
const REPO = "acme/senders";
let gh: GitHubSim;
let h: Harness;

const deliver = (event: string, payload: unknown) => world.deliver(event, payload);
const scope = (sender: string) => ({ repo: REPO, installationId: gh.installationId, sender, serverUrl: gh.serverUrl });
const refused = async () => {
  const text = await (await fetch(`http://127.0.0.1:${await h.operator!.port}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith("agentfactory_tickets_total{") && l.includes('result="refused"'))
    .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
};

let world: GatewayWorld;
beforeAll(async () => {
  world = await startGatewayWorld({
    repo: REPO,
    secret: SECRET,
    users: { maintainer: "write", reader: "read" },
    script: () => ({ hang: true }),
    operatorEnv: { METRICS_PORT: "0" },
  });
  ({ gh, h } = world);
}, 90_000);

afterAll(async () => {
  await world?.stop();
});

describe("sender permission, checked by the operator", () => {
  it("refuses a reader's labeling and a stranger's retry: no run, counted as refused", async () => {
    const issue = gh.createIssue(REPO, { title: "Drop the tests", user: "mallory", labels: ["ai-agent"] });
    expect((await deliver("issues", issuesLabeled(scope("reader"), issue, "ai-agent"))).status).toBe(202);
    const retry = issueCommentCreated(scope("stranger"), issue, { body: "/agentfactory retry", user: "stranger" });
    expect((await deliver("issue_comment", retry)).status).toBe(202);
    const refusals = () => h.operator!.logs.filter((l) => l.includes('"ticket refused"'));
    await h.waitFor("two refusals", () => refusals().length >= 2);
    expect(await refused()).toBe(2);
    expect(h.runs().filter((r) => r.spec.ticket.number === issue.number)).toEqual([]);
    expect(refusals().some((l) => l.includes('"sender":"reader"'))).toBe(true);
    expect(refusals().some((l) => l.includes('"sender":"stranger"'))).toBe(true);
  });

  it("starts a run for a maintainer's labeling (positive control), through the same gateway and operator", async () => {
    const issue = gh.createIssue(REPO, { title: "Add /healthz", user: "mallory", labels: ["ai-agent"] });
    expect((await deliver("issues", issuesLabeled(scope("maintainer"), issue, "ai-agent"))).status).toBe(202);
    const run = await h.waitFor("the run", () => h.runs().find((r) => r.spec.ticket.number === issue.number));
    expect(run.spec.ticket.author).toBe("mallory");
  });
});

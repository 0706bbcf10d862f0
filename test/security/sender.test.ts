/**
 * Issue 14, item 10 (the gateway's App key): the internet-facing gateway holds no GitHub App
 * credential, so who may start or steer a run is checked by the operator, which has the key. Played
 * through the real gateway process (started without any App key), NATS and the real operator against
 * the GitHub simulator: a reader's labeling and a stranger's command reach the operator and are
 * refused there (no run, counted as refused), while a maintainer's labeling starts a run.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Proc, startProcess, stopProcess } from "../e2e/world.ts";
import { harnessOperatorEnv } from "../operator/forge-world.ts";
import { type Harness, startHarness } from "../operator/harness.ts";
import {
  type GitHubSim,
  githubDelivery,
  issueCommentCreated,
  issuesLabeled,
  startGitHubSim,
} from "../world/github/index.ts";

const SECRET = "sender-webhook-secret";
const REPO = "acme/senders";
let gh: GitHubSim;
let h: Harness;
let gateway: Proc;

const deliver = async (event: string, payload: unknown) => {
  const d = githubDelivery(SECRET, event, payload);
  return fetch(`${gateway.url}/webhooks/github`, { method: "POST", headers: d.headers, body: d.body });
};
const scope = (sender: string) => ({ repo: REPO, installationId: gh.installationId, sender, serverUrl: gh.serverUrl });
const refused = async () => {
  const text = await (await fetch(`http://127.0.0.1:${await h.operator!.port}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith("agentfactory_tickets_total{") && l.includes('result="refused"'))
    .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
};

beforeAll(async () => {
  gh = await startGitHubSim({ users: { maintainer: "write", reader: "read" } });
  await gh.createRepo(REPO, { "README.md": "# senders\n" });
  h = await startHarness();
  h.setScript(() => ({ hang: true }));
  h.startOperator({ ...harnessOperatorEnv(gh), METRICS_PORT: "0" });
  await h.waitFor("operator", () => h.operator?.logs.some((l) => l.includes("ticket consumer started")));
  // The gateway as the chart runs it: webhook secret, NATS; no App id, no App key.
  gateway = await startProcess("gateway", "gateway/main.ts", /"port":(\d+)/, undefined, {
    PORT: "0",
    HOST: "127.0.0.1",
    ...h.nats.env("gateway"),
    GITHUB_WEBHOOK_SECRET: SECRET,
    LOG_LEVEL: "info",
  });
}, 90_000);

afterAll(async () => {
  if (gateway) await stopProcess(gateway.proc);
  await h?.stop();
  await gh?.stop();
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

import { serve } from "@hono/node-server";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TICKETS_STREAM } from "../../core/streams.ts";
import { Ticket } from "../../core/ticket.ts";
import { createApp } from "../../gateway/app.ts";
import { clickUpClient } from "../../gateway/clickup-api.ts";
import { natsPublisher } from "../../gateway/publisher.ts";
import { type ClickUpSim, clickUpDelivery, startClickUpSim, taskTagUpdated } from "../world/clickup/index.ts";
import {
  type GitHubSim,
  githubDelivery,
  issueCommentCreated,
  issuesLabeled,
  pullRequestReviewSubmitted,
  startGitHubSim,
} from "../world/github/index.ts";
import { type NatsServer, startNats } from "../world/nats.ts";
import { memoryLogger } from "./fakes.ts";

// Every source over real HTTP, against the GitHub and ClickUp simulators and a real nats-server. The
// gateway fetches ClickUp tasks; it asks GitHub nothing (it holds no App key): the tickets name their
// senders, and the operator checks them (test/operator/senders.test.ts).
const GH_SECRET = "sources-github-secret";
const CU_SECRET = "sources-clickup-secret";
const CU_TOKEN = "pk_sources_token";
const REPO = "acme/widgets";

describe("gateway sources against the GitHub and ClickUp simulators", () => {
  let nats: NatsServer;
  let gh: GitHubSim;
  let cu: ClickUpSim;
  let publisher: ReturnType<typeof natsPublisher>;
  let server: ReturnType<typeof serve>;
  let url = "";

  beforeAll(async () => {
    [nats, gh, cu] = await Promise.all([
      startNats(),
      startGitHubSim({ users: { maintainer: "write", reader: "read", owner: "admin" } }),
      startClickUpSim({
        token: CU_TOKEN,
        tasks: [
          { id: "86list", name: "Export CSV", description: "Stream rows.", listId: "901", tags: ["ai-agent"] },
          {
            id: "86field",
            name: "Fix login",
            listId: "901",
            customFields: [{ name: "Repository", type: "url", value: `https://github.com/${REPO}` }],
          },
        ],
        failures: [{ status: 500, times: 1 }],
      }),
    ]);
    await gh.createRepo(REPO, { "README.md": "# widgets\n" });
    const { logger } = memoryLogger("silent");
    publisher = natsPublisher({ servers: nats.url, auth: nats.clientAuth("gateway"), logger, reconnectWaitMs: 100 });
    await publisher.connected;
    const app = createApp({
      publisher,
      logger,
      clickup: clickUpClient({ apiUrl: cu.apiUrl, token: CU_TOKEN }),
      config: {
        github: { webhookSecret: GH_SECRET, triggerLabel: "ai-agent" },
        clickup: {
          webhookSecret: CU_SECRET,
          triggerTag: "ai-agent",
          repoMap: { "901": REPO },
          repoField: "repository",
        },
        bodyLimitBytes: 1 << 20,
      },
    });
    url = await new Promise<string>((resolve) => {
      server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) =>
        resolve(`http://127.0.0.1:${info.port}`),
      );
    });
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await publisher?.close();
    await Promise.all([nats?.stop(), gh?.stop(), cu?.stop()]);
  });

  const scope = (sender: string) => ({
    repo: REPO,
    installationId: gh.installationId,
    sender,
    serverUrl: gh.serverUrl,
  });
  const postGitHub = (event: string, payload: unknown) => {
    const delivery = githubDelivery(GH_SECRET, event, payload);
    return fetch(`${url}/webhooks/github`, { method: "POST", headers: delivery.headers, body: delivery.body });
  };
  const stored = async (id: string) => {
    const nc = await connect(nats.options("admin"));
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(TICKETS_STREAM);
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const msg = await jsm.streams.getMessage(TICKETS_STREAM, { seq });
        if (msg?.header?.get("Nats-Msg-Id") === id) return Ticket.parse(msg.json());
      }
      return undefined;
    } finally {
      await nc.close();
    }
  };

  it("publishes a maintainer's label as a new ticket naming the sender, asking the forge nothing", async () => {
    const issue = gh.createIssue(REPO, {
      title: "Add /healthz",
      body: "Please.",
      user: "reporter",
      labels: ["ai-agent"],
    });
    const res = await postGitHub("issues", issuesLabeled(scope("maintainer"), issue, "ai-agent"));
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect(await stored(id)).toMatchObject({
      kind: "new",
      repo: REPO,
      number: issue.number,
      workItem: `gh-${issue.number}`,
      author: "reporter",
      sender: "maintainer",
      installationId: gh.installationId,
    });
    // No App token minted, no permission asked: the gateway has no key to do either with.
    expect(gh.requests.filter((r) => /\/app\/|\/collaborators\//.test(r.path))).toEqual([]);
  });

  it("turns commands on an agent PR into tickets; a comment's head branch is left to the operator", async () => {
    const issue = gh.createIssue(REPO, { title: "Add /healthz", user: "reporter", labels: ["ai-agent"] });
    const branch = `agent/${issue.number}-add-healthz`;
    await gh.commitFiles(REPO, branch, { "health.ts": "export {}\n" });
    const octokit = new Octokit({ baseUrl: gh.apiUrl, auth: gh.mintToken(REPO) });
    const [owner, name] = REPO.split("/") as [string, string];
    const { data: pr } = await octokit.rest.pulls.create({
      owner,
      repo: name,
      title: "Add /healthz",
      head: branch,
      base: "main",
    });
    const comment = issueCommentCreated(
      scope("maintainer"),
      { ...pr, labels: [] },
      { body: "/agentfactory fix\nHandle HEAD too." },
    );
    const payload = { ...comment, issue: { ...comment.issue, pull_request: { url: pr.url } } };
    const res = await postGitHub("issue_comment", payload);
    const { id } = (await res.json()) as { id: string };
    expect(await stored(id)).toMatchObject({
      kind: "feedback",
      sender: "maintainer",
      pullRequest: { number: pr.number },
      comment: "/agentfactory fix\nHandle HEAD too.",
    });

    const review = pullRequestReviewSubmitted(scope("owner"), pr, { body: "/agentfactory stop", state: "commented" });
    const stop = (await (await postGitHub("pull_request_review", review)).json()) as { id: string };
    expect(await stored(stop.id)).toMatchObject({
      kind: "cancel",
      number: issue.number,
      workItem: `gh-${issue.number}`,
      sender: "owner",
      pullRequest: { number: pr.number, branch },
    });
  });

  it("fetches a tagged ClickUp task, maps it to its repository, and survives a failing ClickUp API (503, then accepted)", async () => {
    const delivery = clickUpDelivery(CU_SECRET, taskTagUpdated({ taskId: "86list", tags: ["ai-agent"] }));
    const post = () =>
      fetch(`${url}/webhooks/clickup`, { method: "POST", headers: delivery.headers, body: delivery.body });
    expect((await post()).status).toBe(503); // the simulator's first API call fails
    const res = await post(); // ClickUp retries the same delivery
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect(await stored(id)).toMatchObject({
      source: "clickup",
      kind: "new",
      repo: REPO,
      workItem: "86list",
      title: "Export CSV",
      body: "Stream rows.",
      url: "https://app.clickup.com/t/86list",
    });

    const byField = clickUpDelivery(CU_SECRET, taskTagUpdated({ taskId: "86field", tags: ["ai-agent"] }));
    const fieldRes = await fetch(`${url}/webhooks/clickup`, {
      method: "POST",
      headers: byField.headers,
      body: byField.body,
    });
    expect(await stored(((await fieldRes.json()) as { id: string }).id)).toMatchObject({
      repo: REPO,
      workItem: "86field",
    });
  });
});

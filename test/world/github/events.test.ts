import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Octokit } from "@octokit/rest";
import { Webhooks } from "@octokit/webhooks";
import { afterAll, beforeAll, expect, it } from "vitest";
import { GIT_ENV } from "./git.ts";
import { type GitHubSim, startGitHubSim } from "./index.ts";

const run = promisify(execFile);
const SECRET = "hook-secret";
let gh: GitHubSim;
let receiver: Server;
let work: string;
const received: { id: string; name: string; action?: string; sender: string; payload: Record<string, unknown> }[] = [];

beforeAll(async () => {
  const webhooks = new Webhooks({ secret: SECRET });
  receiver = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const ok = await webhooks.verify(body, String(req.headers["x-hub-signature-256"]));
    if (!ok) return void res.writeHead(401).end();
    const payload = JSON.parse(body);
    received.push({
      id: String(req.headers["x-github-delivery"]),
      name: String(req.headers["x-github-event"]),
      action: payload.action,
      sender: payload.sender.login,
      payload,
    });
    res.writeHead(202).end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  gh = await startGitHubSim();
  await gh.createRepo("acme/hooks", { "a.txt": "a\n" });
  gh.setWebhook({ url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`, secret: SECRET });
  work = await mkdtemp(join(tmpdir(), "ghsim-events-"));
});

afterAll(async () => {
  await gh?.stop();
  receiver?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

const events = () => received.map((r) => `${r.name}.${r.action ?? ""}:${r.sender}`);

it("delivers signed events for test actions, REST writes, pushes and GraphQL, in order", async () => {
  const issue = gh.createIssue("acme/hooks", { title: "Do it", user: "alice", labels: ["ai-agent"] });
  const token = gh.mintToken("acme/hooks");
  const octokit = new Octokit({ baseUrl: gh.apiUrl, auth: token });
  const ref = { owner: "acme", repo: "hooks" };
  await octokit.issues.createComment({ ...ref, issue_number: issue.number, body: "on it" });
  gh.addComment("acme/hooks", issue.number, { body: "thanks", user: "alice" });

  const dir = join(work, "c");
  await run("git", ["clone", "-q", gh.cloneUrl("acme/hooks", token), dir], { env: GIT_ENV });
  await run("git", ["checkout", "-q", "-b", "agent/1-do-it"], { cwd: dir, env: GIT_ENV });
  await writeFile(join(dir, "b.txt"), "b\n");
  await run("git", ["add", "-A"], { cwd: dir, env: GIT_ENV });
  await run("git", ["commit", "-qm", "b"], { cwd: dir, env: GIT_ENV });
  await run("git", ["push", "-q", "origin", "agent/1-do-it"], { cwd: dir, env: GIT_ENV });
  const pr = await octokit.pulls.create({ ...ref, title: "Do it", head: "agent/1-do-it", base: "main", draft: true });
  await gh.commitFiles("acme/hooks", "agent/1-do-it", { "c.txt": "c\n" }, "human fix", "bob");
  gh.submitReview("acme/hooks", pr.data.number, {
    user: "copilot[bot]",
    body: "BLOCKING: x",
    event: "REQUEST_CHANGES",
  });
  await octokit.graphql(
    "mutation($id: ID!) { markPullRequestReadyForReview(input: { pullRequestId: $id }) { clientMutationId } }",
    {
      id: pr.data.node_id,
    },
  );
  await gh.webhooksSettled();

  const bot = gh.botLogin;
  expect(events()).toEqual([
    "issues.opened:alice",
    "issues.labeled:alice",
    `issue_comment.created:${bot}`,
    "issue_comment.created:alice",
    `push.:${bot}`,
    `pull_request.opened:${bot}`,
    "push.:bob",
    "pull_request.synchronize:bob",
    "pull_request_review.submitted:copilot[bot]",
    `pull_request.ready_for_review:${bot}`,
  ]);
  const labeled = received[1]!.payload as {
    label: { name: string };
    issue: { labels: { name: string }[] };
    installation: { id: number };
  };
  expect(labeled.label.name).toBe("ai-agent");
  expect(labeled.installation.id).toBe(gh.installationId);
  const botComment = received[2]!.payload as { comment: { user: { type: string } } };
  expect(botComment.comment.user.type).toBe("Bot");
  const sync = received[7]!.payload as { after: string; pull_request: { head: { sha: string } } };
  expect(sync.pull_request.head.sha).toBe(sync.after);
  expect((received[8]!.payload as { review: { state: string } }).review.state).toBe("changes_requested");
  expect(gh.deliveries.every((d) => d.status === 202)).toBe(true);

  const first = gh.deliveries[0]!;
  await gh.redeliver(first.id);
  expect(received.at(-1)?.id).toBe(first.id);
});

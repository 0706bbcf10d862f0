import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OutcomeRecord, type OutcomeRecordInput } from "../../core/outcome.ts";
import { OUTCOMES_STREAM, outcomeSubject } from "../../core/streams.ts";
import { ensureStreams } from "../../operator/consumer.ts";
import { PATTERNS_BRANCH } from "../../operator/patterns-job.ts";
import { type GitHubSim, startGitHubSim } from "../world/github/index.ts";
import { type NatsServer, startNats } from "../world/nats.ts";

/**
 * The pattern-extraction job as it runs in its CronJob: a child process reading OUTCOMES from a real
 * nats-server and proposing the rules on the GitHub simulator (real git underneath). Week after week
 * it keeps ONE pull request on the fixed branch up to date, and a week without news changes nothing.
 */

const ROOT = join(import.meta.dirname, "../..");
const REPO = "acme/rules";
const today = () => new Date().toISOString().slice(0, 10);

let nats: NatsServer;
let gh: GitHubSim;
let nc: NatsConnection;
let dir: string;
let keyFile: string;

beforeAll(async () => {
  [nats, gh] = await Promise.all([startNats(), startGitHubSim()]);
  await gh.createRepo(REPO, {
    "README.md": "# rules\n",
    ".claude/rules/patterns.md": "# Agent Patterns — What Works Well\n\nNo agent outcomes recorded yet.\n",
  });
  dir = await mkdtemp(join(tmpdir(), "patterns-job-"));
  keyFile = join(dir, "private-key.pem");
  await writeFile(keyFile, gh.privateKeyPem, { mode: 0o600 });
  // Outcomes are published as the operator publishes them.
  nc = await connect(nats.options("operator"));
  await ensureStreams(await jetstreamManager(nc));
});

afterAll(async () => {
  await nc?.close();
  await Promise.all([nats?.stop(), gh?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface JobRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runJob(env: Record<string, string> = {}): Promise<JobRun> {
  const full: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: dir,
    ...nats.env("patterns"),
    RULES_REPO: REPO,
    GITHUB_APP_ID: String(gh.appId),
    GITHUB_APP_PRIVATE_KEY_FILE: keyFile,
    GITHUB_API_URL: gh.apiUrl,
    GITHUB_SERVER_URL: gh.serverUrl,
    LOG_LEVEL: "info",
    ...env,
  };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "operator/patterns-job.ts"],
      { cwd: ROOT, env: full, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const daysAgo = (d: number) => new Date(Date.now() - d * 86_400_000).toISOString().replace(/\.\d{3}Z$/, "Z");

/** A finished run as the operator records it (core/outcome.ts). */
function outcome(n: number, over: Partial<OutcomeRecordInput>): OutcomeRecord {
  const clean = (over.outcome ?? "clean") === "clean";
  return OutcomeRecord.parse({
    outcome: "clean",
    pr_url: `https://github.com/acme/shop/pull/${n}`,
    pr_number: n,
    branch: `agent/${n}-change`,
    risk_tier: "medium",
    checks: clean
      ? { gate: "success", tests: "success", review: "success", spec_audit: "success" }
      : { gate: "success", tests: "success", review: "failure", spec_audit: "skipped" },
    files_changed: [],
    review_findings: [],
    run_id: `acme-shop-${n}`,
    timestamp: daysAgo(10 - (n % 10)),
    model: "claude-sonnet-4-5",
    review_model: "claude-sonnet-4-5",
    provider: "anthropic",
    cost_usd: clean ? 1.25 : 3.5,
    duration_ms: 600_000,
    num_turns: 40,
    turns_total: 40,
    engine: "agentfactory",
    tokens: { input: 120_000, output: 9_000, cache_read: 80_000, cache_write: 4_000 },
    remediation_rounds: clean ? 0 : 2,
    issue_url: `https://github.com/acme/shop/issues/${n + 100}`,
    phase: clean ? "Ready" : "Escalated",
    stages: [{ name: "write", attempt: 1, outcome: "succeeded", cost_usd: 1, turns: 30, duration_ms: 400_000 }],
    ...over,
  });
}

async function publish(records: OutcomeRecord[], extra: string[] = []): Promise<void> {
  const js = jetstream(nc);
  for (const r of records)
    await js.publish(outcomeSubject(r.outcome), JSON.stringify(r), { msgID: `${r.run_id}:${r.phase}` });
  for (const body of extra) await js.publish(outcomeSubject("clean"), body);
}

async function rulesPulls() {
  return (await gh.pulls(REPO)).filter((p) => p.head.ref === PATTERNS_BRANCH);
}

const branchFile = (name: string) => gh.readFile(REPO, PATTERNS_BRANCH, `.claude/rules/${name}`);

const FINDING = "BLOCKING: No input validation on the /orders endpoint (src/api/orders.ts:42).";

describe("pattern-extraction job", () => {
  it("fails with exit code 1 on a bad configuration", async () => {
    const run = await runJob({ RULES_REPO: "not-a-repo" });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("RULES_REPO must be owner/name");
  });

  it("week 1: opens one PR with the learned patterns on the fixed branch", async () => {
    await publish(
      [
        outcome(1, { files_changed: ["src/api/orders.ts", "src/api/orders.test.ts"] }),
        outcome(2, { files_changed: ["src/api/orders.ts", "README.md"] }),
        outcome(3, { files_changed: ["src/api/orders.ts", "src/api/orders.test.ts"] }),
        outcome(4, { outcome: "escalated", files_changed: ["src/db/schema.ts"], review_findings: [FINDING] }),
        outcome(5, {
          outcome: "escalated",
          files_changed: ["src/db/schema.ts", "src/api/orders.ts"],
          review_findings: ["No input validation on the /orders endpoint (src/api/orders.ts:57)"],
        }),
      ],
      ["not json at all", JSON.stringify({ hello: "not an outcome" })],
    );

    const run = await runJob();
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("rules pull request opened");
    expect(run.stdout).toContain('"bad":2');

    const pulls = await rulesPulls();
    expect(pulls).toHaveLength(1);
    const pr = pulls[0]!;
    expect(pr.state).toBe("open");
    expect(pr.base.ref).toBe("main");
    expect(pr.title).toBe(`Update learned patterns (${today()})`);
    expect(pr.body).toContain("**5** finished pipeline runs");
    expect(pr.body).toContain("success rate **60%**");
    expect(pr.body).toContain("- [ ] Nothing confidential");
    expect(pr.head.sha).toBe(await gh.branchSha(REPO, PATTERNS_BRANCH));

    const patterns = await branchFile("patterns.md");
    expect(patterns).toContain("Based on 5 runs. Success rate: 60%.");
    expect(patterns).toContain(
      "- File `src/api/orders.ts` was changed in 3 clean PRs without trouble. (PRs: #1, #2, #3)",
    );
    expect(patterns).not.toContain("orders.test.ts` was changed"); // 2 clean PRs: below the threshold
    const anti = await branchFile("anti-patterns.md");
    expect(anti).toContain(
      "- Review raised this in 2 failed PRs: “No input validation on the /orders endpoint (src/api/orders.ts:57)” (PRs: #4, #5)",
    );
    expect(anti).toContain("- File `src/db/schema.ts` was part of 2 failed PRs; change it with care. (PRs: #4, #5)");

    // One commit on top of main, with the seed's message; main itself is untouched.
    const log = await gitLog(`main..${PATTERNS_BRANCH}`);
    expect(log).toEqual(["chore: update learned patterns from 5 pipeline runs"]);
    expect(await gh.readFile(REPO, "main", ".claude/rules/patterns.md")).toContain("No agent outcomes recorded yet.");
    expect(await gh.readFile(REPO, "main", ".claude/rules/anti-patterns.md")).toBeUndefined();
  });

  it("week 2: updates the same PR with the new evidence (force-moved branch, title and body)", async () => {
    const [before] = await rulesPulls();
    // A human retitled the PR in the meantime; the job puts its own title back.
    const octokit = new Octokit({ baseUrl: gh.apiUrl, auth: gh.mintToken(REPO) });
    await octokit.rest.pulls.update({ owner: "acme", repo: "rules", pull_number: before!.number, title: "old" });
    // main moved too: the new commit sits on the new main.
    await gh.commitFiles(REPO, "main", { "CONTRIBUTING.md": "be nice\n" }, "docs: contributing");

    await publish([
      outcome(6, { files_changed: ["src/api/orders.ts", "src/api/orders.test.ts"] }),
      outcome(7, {
        outcome: "escalated",
        files_changed: ["src/db/schema.ts"],
        review_findings: ["no input validation on the /orders endpoint (src/api/orders.ts:12)"],
      }),
    ]);
    const run = await runJob({ GITHUB_INSTALLATION_ID: String(gh.installationId), WINDOW_DAYS: "0" });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("rules pull request updated");

    const pulls = await rulesPulls();
    expect(pulls).toHaveLength(1);
    const pr = pulls[0]!;
    expect(pr.number).toBe(before!.number);
    expect(pr.head.sha).not.toBe(before!.head.sha);
    expect(pr.title).toBe(`Update learned patterns (${today()})`);
    expect(pr.body).toContain("**7** finished pipeline runs");
    expect(pr.body).toContain("(all recorded outcomes)");

    expect(await branchFile("patterns.md")).toContain(
      "- File `src/api/orders.ts` was changed in 4 clean PRs without trouble. (PRs: #1, #2, #3 +1 more)",
    );
    expect(await branchFile("patterns.md")).toContain("`src/api/orders.test.ts` was changed in 3 clean PRs");
    expect(await branchFile("anti-patterns.md")).toContain(
      "- Review raised this in 3 failed PRs: “no input validation on the /orders endpoint (src/api/orders.ts:12)” (PRs: #4, #5, #7)",
    );
    expect(await gitLog(`main..${PATTERNS_BRANCH}`)).toEqual(["chore: update learned patterns from 7 pipeline runs"]);
    expect(await gh.readFile(REPO, PATTERNS_BRANCH, "CONTRIBUTING.md")).toBe("be nice\n");
  });

  it("week 3: nothing new changes nothing", async () => {
    const [before] = await rulesPulls();
    const writes = gh.requests.length;
    const run = await runJob();
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("the open rules pull request is current");
    const pulls = await rulesPulls();
    expect(pulls).toHaveLength(1);
    expect(pulls[0]!.head.sha).toBe(before!.head.sha);
    expect(pulls[0]!.updated_at).toBe(before!.updated_at);
    const made = gh.requests.slice(writes).filter((r) => r.method !== "GET" && !r.path.includes("/access_tokens"));
    expect(made).toEqual([]);
  });

  it("after the PR was closed unmerged, the next change opens a new one on the same branch", async () => {
    const [old] = await rulesPulls();
    const octokit = new Octokit({ baseUrl: gh.apiUrl, auth: gh.mintToken(REPO) });
    await octokit.rest.pulls.update({ owner: "acme", repo: "rules", pull_number: old!.number, state: "closed" });
    await publish([outcome(8, { files_changed: ["src/api/orders.ts"] })]);

    const run = await runJob();
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("rules pull request opened");
    const pulls = await rulesPulls();
    expect(pulls.map((p) => [p.number === old!.number, p.state]).sort()).toEqual([
      [false, "open"],
      [true, "closed"],
    ]);
    const open = pulls.find((p) => p.state === "open")!;
    expect(open.head.sha).toBe(await gh.branchSha(REPO, PATTERNS_BRANCH));
    expect(open.body).toContain("**8** finished pipeline runs");
  });

  it("is quiet when the stream holds no outcomes", async () => {
    const admin = await connect(nats.options("admin"));
    await (await jetstreamManager(admin)).streams.purge(OUTCOMES_STREAM);
    await admin.close();
    const run = await runJob();
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("no finished runs to learn from");
    expect(await rulesPulls()).toHaveLength(2);
  });

  it("read OUTCOMES as the patterns NATS user without a permissions violation", () => {
    expect(nats.auth).toBe(true);
    expect(nats.violations()).toEqual([]);
  });
});

function gitLog(range: string): Promise<string[]> {
  return new Promise((resolve, reject) =>
    execFile("git", ["log", "--format=%s", range], { cwd: gh.bareDir(REPO) }, (err, out) =>
      err ? reject(err) : resolve(out.split("\n").filter(Boolean)),
    ),
  );
}

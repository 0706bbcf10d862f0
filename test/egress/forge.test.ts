import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AttemptClaims } from "../../core/attempt-token.ts";
import { type GitHubSim, startGitHubSim } from "../world/github/index.ts";
import { type NatsServer, startNats } from "../world/nats.ts";
import { claimsFor, type EgressProc, logged, readRun, reserve, startEgress, tokenFor } from "./harness.ts";

// The forge proxy of the real egress gateway in front of the GitHub simulator (real git over
// `git http-backend`): real git clones and pushes through it with only the attempt token.
const BRANCH = "agent/1-fix-add";

interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Real git as the runner would run it: no config read, the credential in an extra header only. */
function git(cwd: string, args: string[], token?: string): Promise<GitResult> {
  const auth = token
    ? {
        GIT_CONFIG_COUNT: "1",
        GIT_CONFIG_KEY_0: "http.extraHeader",
        GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from(`x-access-token:${token}`).toString("base64")}`,
      }
    : {};
  return new Promise((resolve) => {
    execFile(
      "git",
      args,
      {
        cwd,
        env: {
          PATH: process.env.PATH,
          HOME: cwd,
          GIT_CONFIG_NOSYSTEM: "1",
          GIT_CONFIG_GLOBAL: "/dev/null",
          GIT_TERMINAL_PROMPT: "0",
          GIT_AUTHOR_NAME: "Agent",
          GIT_AUTHOR_EMAIL: "agent@example.test",
          GIT_COMMITTER_NAME: "Agent",
          GIT_COMMITTER_EMAIL: "agent@example.test",
          ...auth,
        },
      },
      (err, stdout, stderr) =>
        resolve({
          code: err ? ((err as { code?: number }).code ?? 1) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
        }),
    );
  });
}

async function commit(dir: string, files: Record<string, string | null>, message: string) {
  for (const [path, content] of Object.entries(files)) {
    if (content === null) await rm(join(dir, path), { force: true });
    else {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), content);
    }
  }
  expect((await git(dir, ["add", "-A"])).code).toBe(0);
  expect((await git(dir, ["commit", "-q", "-m", message])).code).toBe(0);
  return (await git(dir, ["rev-parse", "HEAD"])).stdout.trim();
}

describe("egress forge proxy", () => {
  let nats: NatsServer;
  let gh: GitHubSim;
  let egress: EgressProc;
  let work: string;
  let forgeToken: string;
  let claims: AttemptClaims;
  let token: string;
  const receivePosts = () =>
    gh.requests.filter((r) => r.method === "POST" && r.path.endsWith("/git-receive-pack")).length;

  beforeAll(async () => {
    nats = await startNats();
    // The App may change workflows, so that the forge itself would accept those pushes: the refusals
    // below are the egress gateway's.
    gh = await startGitHubSim({
      appPermissions: {
        contents: "write",
        pull_requests: "write",
        issues: "write",
        metadata: "read",
        workflows: "write",
      },
    });
    await gh.createRepo("acme/calc", {
      "src/add.js": "export const add = (a, b) => a - b;\n",
      "README.md": "# calc\n",
    });
    await gh.createRepo("acme/other", { "README.md": "# other\n" });
    egress = await startEgress({
      ...nats.env("egress"),
      MODEL_BASE_URL: "http://127.0.0.1:9",
      FORGE_API_URL: gh.apiUrl,
      FORGE_GIT_URL: gh.serverUrl,
    });
    forgeToken = gh.mintToken("acme/calc", {
      contents: "write",
      pull_requests: "write",
      issues: "write",
      metadata: "read",
      workflows: "write",
    });
    claims = claimsFor({ namespace: "agents", name: "calc-1-0abc", uid: "uid-forge" }, { branch: BRANCH });
    expect((await reserve(egress.adminUrl, claims, { budgetUsd: 1, forgeToken })).view.stages.write?.forgeToken).toBe(
      true,
    );
    token = await tokenFor(claims);
    work = await mkdtemp(join(tmpdir(), "egress-forge-"));
  });
  afterAll(async () => {
    await egress?.stop();
    await gh?.stop();
    await nats?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const remote = () => `${egress.url}/acme/calc.git`;

  it("clones the run's repository and pushes the run's agent branch with only the attempt token", async () => {
    const cloned = await git(work, ["clone", "-q", remote(), "calc"], token);
    expect(cloned.stderr).toBe("");
    expect(cloned.code).toBe(0);
    const dir = join(work, "calc");
    await git(dir, ["checkout", "-q", "-b", BRANCH]);
    const sha = await commit(dir, { "src/add.js": "export const add = (a, b) => a + b;\n" }, "fix add");
    const pushed = await git(dir, ["push", "-q", remote(), `HEAD:refs/heads/${BRANCH}`], token);
    expect(pushed.stderr).toBe("");
    expect(pushed.code).toBe(0);
    expect(await gh.branchSha("acme/calc", BRANCH)).toBe(sha);
    // A second push on top (old != zero) goes through as well.
    const next = await commit(dir, { "test/add.test.js": "// test\n" }, "add a test");
    expect((await git(dir, ["push", "-q", remote(), `HEAD:refs/heads/${BRANCH}`], token)).code).toBe(0);
    expect(await gh.branchSha("acme/calc", BRANCH)).toBe(next);
  });

  it("refuses a push to main with a message the agent sees, and main does not move", async () => {
    const dir = join(work, "calc");
    const main = await gh.branchSha("acme/calc", "main");
    const posts = receivePosts();
    const pushed = await git(dir, ["push", remote(), "HEAD:refs/heads/main"], token);
    expect(pushed.code).not.toBe(0);
    expect(pushed.stderr).toContain("[remote rejected] HEAD -> main");
    expect(pushed.stderr).toContain(`egress: this run may push only ${BRANCH}, not main`);
    expect(await gh.branchSha("acme/calc", "main")).toBe(main);
    expect(receivePosts()).toBe(posts);
    // Nor may it push any other branch, tag, or delete its own.
    expect((await git(dir, ["push", remote(), "HEAD:refs/heads/agent/2-other"], token)).stderr).toContain(
      "[remote rejected]",
    );
    expect((await git(dir, ["push", remote(), "HEAD:refs/tags/v1"], token)).stderr).toContain("[remote rejected]");
    const del = await git(dir, ["push", remote(), `:refs/heads/${BRANCH}`], token);
    expect(del.stderr).toContain("may not delete");
    expect(await gh.branchSha("acme/calc", BRANCH)).toBeDefined();
    expect(receivePosts()).toBe(posts);
  });

  it("refuses a push touching .github/workflows or .claude/settings.json, even added and removed again", async () => {
    const dir = join(work, "calc");
    const head = await gh.branchSha("acme/calc", BRANCH);
    const posts = receivePosts();
    await commit(dir, { ".github/workflows/ci.yml": "on: push\njobs: {}\n" }, "add a workflow");
    const pushed = await git(dir, ["push", remote(), `HEAD:refs/heads/${BRANCH}`], token);
    expect(pushed.code).not.toBe(0);
    expect(pushed.stderr).toContain("remote: egress: the push changes .github/workflows/ci.yml");
    expect(pushed.stderr).toContain(`[remote rejected] HEAD -> ${BRANCH}`);
    // Hidden in history: added, then removed in the next commit (the branch's tree is clean).
    await commit(dir, { ".github/workflows/ci.yml": null }, "remove it again");
    const hidden = await git(dir, ["push", remote(), `HEAD:refs/heads/${BRANCH}`], token);
    expect(hidden.stderr).toContain(".github/workflows/ci.yml");
    expect(hidden.code).not.toBe(0);
    await git(dir, ["reset", "-q", "--hard", head ?? ""]);
    await commit(dir, { ".claude/settings.json": '{"hooks":{}}\n' }, "turn hooks off");
    const settings = await git(dir, ["push", remote(), `HEAD:refs/heads/${BRANCH}`], token);
    expect(settings.stderr).toContain("the push changes .claude/settings.json");
    expect(await gh.branchSha("acme/calc", BRANCH)).toBe(head);
    expect(receivePosts()).toBe(posts);
    await logged(egress, (e) => e.reason === "protected_path" && Array.isArray(e.paths));
    // Positive control: the forge itself takes the same commit with the same installation token.
    const direct = `${gh.serverUrl}/acme/calc.git`;
    const control = await git(dir, ["push", "-q", direct, "HEAD:refs/heads/agent/control"], forgeToken);
    expect(control.code).toBe(0);
    expect(await gh.readFile("acme/calc", "agent/control", ".claude/settings.json")).toContain("hooks");
    await git(dir, ["reset", "-q", "--hard", head ?? ""]);
  });

  it("refuses fetching another repository before it reaches the forge", async () => {
    const before = gh.requests.filter((r) => r.path.startsWith("/acme/other")).length;
    const cloned = await git(work, ["clone", "-q", `${egress.url}/acme/other.git`, "other"], token);
    expect(cloned.code).not.toBe(0);
    expect(cloned.stderr).toMatch(/403/);
    expect(gh.requests.filter((r) => r.path.startsWith("/acme/other")).length).toBe(before);
    await logged(egress, (e) => e.reason === "other_repository");
  });

  it("refuses git with a missing, expired or superseded token", async () => {
    const anon = await git(work, ["ls-remote", remote()]);
    expect(anon.code).not.toBe(0);
    const expired = await tokenFor(claims, { now: new Date(Date.now() - 7200_000) });
    const refused = await git(work, ["ls-remote", remote()], expired);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/could not read Username|Authentication failed/);
    await logged(egress, (e) => e.kind === "git" && e.reason === "expired" && e.status === 401);
    // The forge token itself is useless against the gateway: it is not an attempt token.
    expect((await git(work, ["ls-remote", remote()], forgeToken)).code).not.toBe(0);
    expect((await git(work, ["ls-remote", remote()], token)).code).toBe(0);
  });

  it("lets a stage that does not push fetch, but not push", async () => {
    const triage = claimsFor({ namespace: "agents", name: "calc-2-0abc", uid: "uid-triage" }, { stage: "triage" });
    await reserve(egress.adminUrl, triage, { budgetUsd: 1, forgeToken });
    const t = await tokenFor(triage);
    expect((await git(work, ["ls-remote", remote()], t)).code).toBe(0);
    const dir = join(work, "calc");
    const pushed = await git(dir, ["push", remote(), `HEAD:refs/heads/${triage.branch}`], t);
    expect(pushed.code).not.toBe(0);
    expect(pushed.stderr).toMatch(/403/);
  });

  it("allows the stage's REST endpoints on its repository only, and follows pagination through itself", async () => {
    const octokit = new Octokit({
      baseUrl: `${egress.url}/api/v3`,
      auth: token,
      log: { debug() {}, info() {}, warn() {}, error() {} },
    });
    const repo = await octokit.rest.repos.get({ owner: "acme", repo: "calc" });
    expect(repo.data.default_branch).toBe("main");
    const pr = await octokit.rest.pulls.create({
      owner: "acme",
      repo: "calc",
      head: BRANCH,
      base: "main",
      title: "Fix add",
      draft: true,
    });
    expect(pr.status).toBe(201);
    const issue = gh.createIssue("acme/calc", { title: "add() subtracts" });
    for (const body of ["one", "two", "three"]) gh.addComment("acme/calc", issue.number, { body, user: "alice" });
    const comments = await octokit.paginate(octokit.rest.issues.listComments, {
      owner: "acme",
      repo: "calc",
      issue_number: issue.number,
      per_page: 1,
    });
    expect(comments.map((c) => c.body)).toEqual(["one", "two", "three"]);

    // Positive control: the update the write stage does (its body) passes.
    const updated = await octokit.rest.pulls.update({
      owner: "acme",
      repo: "calc",
      pull_number: pr.data.number,
      body: "stats",
    });
    expect(updated.data.body).toBe("stats");
    const before = gh.requests.length;
    const refused = async (call: Promise<unknown>, message: RegExp) => {
      const err = (await call.then(
        () => undefined,
        (e: unknown) => e,
      )) as { status?: number; message?: string } | undefined;
      expect(err?.status).toBe(403);
      expect(err?.message).toMatch(message);
    };
    await refused(octokit.rest.repos.get({ owner: "acme", repo: "other" }), /not the run's repository/);
    await refused(octokit.rest.repos.delete({ owner: "acme", repo: "calc" }), /not allowed in the write stage/);
    await refused(
      octokit.rest.pulls.merge({ owner: "acme", repo: "calc", pull_number: pr.data.number }),
      /not allowed/,
    );
    await refused(
      octokit.rest.pulls.createReview({ owner: "acme", repo: "calc", pull_number: pr.data.number, event: "APPROVE" }),
      /not allowed/,
    );
    await refused(octokit.rest.users.getAuthenticated(), /only the run's repository/);
    await refused(
      octokit.rest.pulls.create({ owner: "acme", repo: "calc", head: "agent/control", base: "main", title: "x" }),
      /only from agent\/1-fix-add/,
    );
    await refused(
      octokit.rest.pulls.update({ owner: "acme", repo: "calc", pull_number: pr.data.number, base: "agent/control" }),
      /not base/,
    );
    const gql = await fetch(`${egress.url}/api/graphql`, {
      method: "POST",
      headers: { authorization: `bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ query: "{ viewer { login } }" }),
    });
    expect(gql.status).toBe(403);
    expect(gh.requests.length).toBe(before);
    const run = await readRun(egress.adminUrl, claims.run);
    expect(run.stages.write?.refused).toBeGreaterThanOrEqual(14);
  });

  it("never gives the forge token back, nor writes it or the attempt token to its log", async () => {
    const view = await readRun(egress.adminUrl, claims.run);
    expect(view.stages.write?.forgeToken).toBe(true);
    expect(JSON.stringify(view)).not.toContain(forgeToken);
    const all = egress.logs.join("\n");
    expect(all).toContain('"kind":"git"');
    expect(all).not.toContain(forgeToken);
    expect(all).not.toContain(token);
    expect(all).not.toContain(Buffer.from(`x-access-token:${forgeToken}`).toString("base64"));
  });

  it("needed nothing of NATS beyond the egress user's permissions", () => {
    expect(nats.violations()).toEqual([]);
  });
});

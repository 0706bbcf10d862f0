import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createAppAuth } from "@octokit/auth-app";
import { graphql } from "@octokit/graphql";
import { request } from "@octokit/request";
import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GIT_ENV } from "./git.ts";
import { type GitHubSim, startGitHubSim } from "./index.ts";

const run = promisify(execFile);
const gitIn = (cwd: string, ...args: string[]) => run("git", args, { cwd, env: GIT_ENV });

let gh: GitHubSim;
let work: string;

beforeAll(async () => {
  gh = await startGitHubSim({ users: { alice: "write", mallory: "read" } });
  await gh.createRepo("acme/shop", {
    "README.md": "# shop\n",
    "src/cart.ts": "export const total = (xs: number[]) => xs.reduce((a, b) => a + b, 0);\n",
    "risk-policy.json": '{"version":"1"}\n',
  });
  await gh.createRepo("acme/other", { "README.md": "# other\n" }, { protectedBranches: ["main"] });
  work = await mkdtemp(join(tmpdir(), "ghsim-test-"));
});

afterAll(async () => {
  await gh?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const octokitFor = (token: string) => new Octokit({ baseUrl: gh.apiUrl, auth: token, log: quiet });

describe("GitHub App", () => {
  it("mints a repo-scoped installation token with @octokit/auth-app against the GHES base URL", async () => {
    const auth = createAppAuth({
      appId: gh.appId,
      privateKey: gh.privateKeyPem,
      installationId: gh.installationId,
      request: request.defaults({ baseUrl: gh.apiUrl }),
    });
    const result = await auth({
      type: "installation",
      repositoryNames: ["shop"],
      permissions: { issues: "write", contents: "read" },
    });
    expect(result.token).toMatch(/^ghs_[A-Za-z0-9]{36}$/);
    expect(result.repositorySelection).toBe("selected");
    expect(result.permissions).toEqual({ metadata: "read", issues: "write", contents: "read" });
    expect(Date.parse(result.expiresAt) - Date.now()).toBeGreaterThan(3500_000);

    const octokit = octokitFor(result.token);
    expect((await octokit.repos.get({ owner: "acme", repo: "shop" })).data.full_name).toBe("acme/shop");
    const other = await octokit.issues
      .createComment({ owner: "acme", repo: "other", issue_number: 1, body: "x" })
      .catch((e: { status: number; response: { data: { message: string } } }) => e);
    expect(other).toMatchObject({
      status: 403,
      response: { data: { message: "Resource not accessible by integration" } },
    });
    // contents:read only: no pull request permission at all.
    const pulls = await octokit.pulls.list({ owner: "acme", repo: "shop" }).catch((e: { status: number }) => e);
    expect(pulls).toMatchObject({ status: 403 });
  });

  it("looks up the repository installation with a JWT and rejects a JWT signed by another key", async () => {
    const auth = createAppAuth({ appId: gh.appId, privateKey: gh.privateKeyPem });
    const { token: jwt } = await auth({ type: "app" });
    const res = await request("GET /repos/{owner}/{repo}/installation", {
      baseUrl: gh.apiUrl,
      owner: "acme",
      repo: "shop",
      headers: { authorization: `bearer ${jwt}` },
    });
    expect(res.data.id).toBe(gh.installationId);

    const { generateKeyPairSync } = await import("node:crypto");
    const foreign = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({
      type: "pkcs1",
      format: "pem",
    });
    const bad = createAppAuth({
      appId: gh.appId,
      privateKey: String(foreign),
      installationId: gh.installationId,
      request: request.defaults({ baseUrl: gh.apiUrl }),
    });
    await expect(bad({ type: "installation" })).rejects.toMatchObject({ status: 401 });
  });

  it("refuses permissions beyond the App's and unknown repositories", async () => {
    const auth = createAppAuth({
      appId: gh.appId,
      privateKey: gh.privateKeyPem,
      installationId: gh.installationId,
      request: request.defaults({ baseUrl: gh.apiUrl }),
    });
    await expect(
      auth({ type: "installation", permissions: { administration: "write" }, refresh: true }),
    ).rejects.toMatchObject({ status: 422 });
    await expect(auth({ type: "installation", repositoryNames: ["nope"], refresh: true })).rejects.toMatchObject({
      status: 422,
    });
  });
});

describe("git over smart HTTP and pull requests", () => {
  it("clones, pushes a branch, opens a draft PR, lists its files and marks it ready via GraphQL", async () => {
    const token = gh.mintToken("acme/shop");
    const dir = join(work, "shop");
    await run("git", ["clone", "--quiet", gh.cloneUrl("acme/shop", token), dir], { env: GIT_ENV });
    expect(await readFile(join(dir, "README.md"), "utf8")).toBe("# shop\n");
    await gitIn(dir, "checkout", "-q", "-b", "agent/1-add-tax");
    await writeFile(join(dir, "src/tax.ts"), "export const tax = (x: number) => x * 0.2;\n");
    await writeFile(join(dir, "README.md"), "# shop\n\nNow with tax.\n");
    await gitIn(dir, "add", "-A");
    await gitIn(dir, "commit", "-q", "-m", "feat: tax");
    await gitIn(dir, "push", "-q", "origin", "agent/1-add-tax");
    const head = (await gitIn(dir, "rev-parse", "HEAD")).stdout.trim();
    expect(await gh.branchSha("acme/shop", "agent/1-add-tax")).toBe(head);

    // A read-only token cannot push; a token for another repository cannot even fetch.
    const readOnly = gh.mintToken("acme/shop", { contents: "read" });
    await gitIn(dir, "remote", "set-url", "origin", gh.cloneUrl("acme/shop", readOnly));
    await expect(gitIn(dir, "push", "-q", "origin", "HEAD:refs/heads/other")).rejects.toThrow(/403|Write access/);
    const elsewhere = gh.mintToken("acme/other");
    await expect(run("git", ["ls-remote", gh.cloneUrl("acme/shop", elsewhere)], { env: GIT_ENV })).rejects.toThrow();

    const octokit = octokitFor(token);
    const pr = await octokit.pulls.create({
      owner: "acme",
      repo: "shop",
      title: "Add tax",
      head: "agent/1-add-tax",
      base: "main",
      body: "Closes #1",
      draft: true,
    });
    expect(pr.status).toBe(201);
    expect(pr.data).toMatchObject({
      number: 1,
      draft: true,
      state: "open",
      head: { ref: "agent/1-add-tax", sha: head },
    });
    expect(pr.data.html_url).toBe(`${gh.serverUrl}/acme/shop/pull/1`);
    expect(pr.data.user?.login).toBe(gh.botLogin);

    const dup = await octokit.pulls
      .create({ owner: "acme", repo: "shop", title: "again", head: "acme:agent/1-add-tax", base: "main" })
      .catch((e: { status: number; response: { data: { errors: { message: string }[] } } }) => e);
    expect(dup).toMatchObject({ status: 422 });
    expect(JSON.stringify((dup as { response: unknown }).response)).toContain(
      "A pull request already exists for acme:agent/1-add-tax",
    );
    await expect(
      octokit.pulls.create({ owner: "acme", repo: "shop", title: "x", head: "missing", base: "main" }),
    ).rejects.toMatchObject({ status: 422 });

    const files = await octokit.pulls.listFiles({ owner: "acme", repo: "shop", pull_number: 1 });
    const byName = Object.fromEntries(files.data.map((f) => [f.filename, f]));
    expect(byName["src/tax.ts"]).toMatchObject({ status: "added", additions: 1, deletions: 0 });
    expect(byName["README.md"]).toMatchObject({ status: "modified", additions: 2, deletions: 0 });
    expect(byName["README.md"]?.patch).toMatch(/^@@ -1 \+1,3 @@/);

    const diff = await octokit.pulls.get({
      owner: "acme",
      repo: "shop",
      pull_number: 1,
      mediaType: { format: "diff" },
    });
    expect(String(diff.data)).toContain("+++ b/src/tax.ts");

    const list = await octokit.pulls.list({ owner: "acme", repo: "shop", head: "acme:agent/1-add-tax", state: "open" });
    expect(list.data.map((p) => p.number)).toEqual([1]);

    const gql = graphql.defaults({ baseUrl: gh.apiUrl, headers: { authorization: `token ${token}` } });
    const q = await gql<{ repository: { pullRequest: { id: string; isDraft: boolean } } }>(
      "query($owner: String!, $name: String!, $n: Int!) { repository(owner: $owner, name: $name) { pullRequest(number: $n) { id isDraft } } }",
      { owner: "acme", name: "shop", n: 1 },
    );
    expect(q.repository.pullRequest).toEqual({ id: pr.data.node_id, isDraft: true });
    const m = await gql<{ markPullRequestReadyForReview: { pullRequest: { isDraft: boolean; number: number } } }>(
      "mutation($id: ID!) { markPullRequestReadyForReview(input: { pullRequestId: $id }) { pullRequest { isDraft number } } }",
      { id: pr.data.node_id },
    );
    expect(m.markPullRequestReadyForReview.pullRequest).toEqual({ isDraft: false, number: 1 });
    expect((await gh.pull("acme/shop", 1)).draft).toBe(false);

    const readOnlyGql = graphql.defaults({ baseUrl: gh.apiUrl, headers: { authorization: `token ${readOnly}` } });
    await expect(
      readOnlyGql(
        "mutation($id: ID!) { convertPullRequestToDraft(input: { pullRequestId: $id }) { pullRequest { isDraft } } }",
        { id: pr.data.node_id },
      ),
    ).rejects.toThrow(/Resource not accessible by integration/);
  });

  it("reviews: inline comments must hit the diff; the App cannot request changes on its own PR", async () => {
    const octokit = octokitFor(gh.mintToken("acme/shop"));
    const base = { owner: "acme", repo: "shop", pull_number: 1 };
    const review = await octokit.pulls.createReview({
      ...base,
      event: "COMMENT",
      body: "🚫 BLOCKING ISSUES FOUND",
      comments: [{ path: "src/tax.ts", line: 1, body: "BLOCKING: rate is hard-coded" }],
    });
    expect(review.data).toMatchObject({ state: "COMMENTED", user: { login: gh.botLogin } });
    await expect(
      octokit.pulls.createReview({
        ...base,
        event: "COMMENT",
        body: "x",
        comments: [{ path: "src/cart.ts", line: 1, body: "not in diff" }],
      }),
    ).rejects.toMatchObject({ status: 422 });
    await expect(octokit.pulls.createReview({ ...base, event: "REQUEST_CHANGES", body: "no" })).rejects.toMatchObject({
      status: 422,
    });
    expect((await octokit.pulls.listReviewComments(base)).data.map((c) => [c.path, c.line, c.body])).toEqual([
      ["src/tax.ts", 1, "BLOCKING: rate is hard-coded"],
    ]);
    gh.submitReview("acme/shop", 1, { user: "copilot[bot]", body: "BLOCKING: fix", event: "REQUEST_CHANGES" });
    expect((await octokit.pulls.listReviews(base)).data.map((r) => r.state)).toEqual([
      "COMMENTED",
      "CHANGES_REQUESTED",
    ]);
  });
});

describe("git details", () => {
  it("inflates a gzip-encoded upload-pack request, as git clients send for large negotiations", async () => {
    const { gzipSync } = await import("node:zlib");
    const sha = await gh.branchSha("acme/shop", "main");
    const pkt = (line: string) => `${(line.length + 4).toString(16).padStart(4, "0")}${line}`;
    const body = gzipSync(`${pkt(`want ${sha}\n`)}0000${pkt("done\n")}`);
    const token = gh.mintToken("acme/shop", { contents: "read" });
    const res = await fetch(`${gh.serverUrl}/acme/shop.git/git-upload-pack`, {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`x-access-token:${token}`).toString("base64")}`,
        "content-type": "application/x-git-upload-pack-request",
        "content-encoding": "gzip",
      },
      body,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-git-upload-pack-result");
    expect(Buffer.from(await res.arrayBuffer()).includes(Buffer.from("PACK"))).toBe(true);
  });

  it("reports renamed and removed files, and refuses a PR with no commits", async () => {
    const token = gh.mintToken("acme/shop");
    const dir = join(work, "shop-rename");
    await run("git", ["clone", "--quiet", gh.cloneUrl("acme/shop", token), dir], { env: GIT_ENV });
    await gitIn(dir, "checkout", "-q", "-b", "agent/9-tidy");
    const octokit = octokitFor(token);
    await gitIn(dir, "push", "-q", "origin", "agent/9-tidy");
    await expect(
      octokit.pulls.create({ owner: "acme", repo: "shop", title: "t", head: "agent/9-tidy", base: "main" }),
    ).rejects.toMatchObject({
      status: 422,
    });
    await gitIn(dir, "mv", "src/cart.ts", "src/basket.ts");
    await gitIn(dir, "rm", "-q", "risk-policy.json");
    await gitIn(dir, "commit", "-q", "-m", "tidy");
    await gitIn(dir, "push", "-q", "origin", "agent/9-tidy");
    const pr = await octokit.pulls.create({
      owner: "acme",
      repo: "shop",
      title: "Tidy",
      head: "agent/9-tidy",
      base: "main",
    });
    const files = await octokit.pulls.listFiles({ owner: "acme", repo: "shop", pull_number: pr.data.number });
    expect(files.data.map((f) => [f.filename, f.status, f.previous_filename])).toEqual(
      expect.arrayContaining([
        ["src/basket.ts", "renamed", "src/cart.ts"],
        ["risk-policy.json", "removed", undefined],
      ]),
    );
    const issues = await octokit.issues.listForRepo({ owner: "acme", repo: "shop", state: "open" });
    expect(issues.data.some((i) => i.number === pr.data.number && i.pull_request)).toBe(true);
    await octokit.pulls.update({ owner: "acme", repo: "shop", pull_number: pr.data.number, state: "closed" });
    expect((await gh.pull("acme/shop", pr.data.number)).state).toBe("closed");
  });
});

describe("push rules", () => {
  it("refuses pushes to a protected branch and workflow changes without the workflows permission", async () => {
    const token = gh.mintToken("acme/other");
    const dir = join(work, "other");
    await run("git", ["clone", "--quiet", gh.cloneUrl("acme/other", token), dir], { env: GIT_ENV });
    await writeFile(join(dir, "README.md"), "changed\n");
    await gitIn(dir, "commit", "-qam", "direct to main");
    await expect(gitIn(dir, "push", "-q", "origin", "main")).rejects.toThrow(/GH006: Protected branch update failed/);
    await gitIn(dir, "push", "-q", "origin", "HEAD:refs/heads/agent/2-readme");
    await gitIn(dir, "checkout", "-q", "-b", "agent/3-ci");
    await mkdir(join(dir, ".github/workflows"), { recursive: true });
    await writeFile(join(dir, ".github/workflows/ci.yml"), "on: push\n");
    await gitIn(dir, "add", "-A");
    await gitIn(dir, "commit", "-qm", "ci");
    await expect(gitIn(dir, "push", "-q", "origin", "agent/3-ci")).rejects.toThrow(/without `workflows` permission/);
    expect(await gh.branchSha("acme/other", "agent/3-ci")).toBeUndefined();
  });

  it("lets a token with workflows: write push workflow changes when the App has that permission", async () => {
    const sim = await startGitHubSim({ appPermissions: { contents: "write", workflows: "write" } });
    try {
      await sim.createRepo("acme/ci", { "README.md": "x\n" });
      const dir = join(work, "ci");
      await run("git", ["clone", "--quiet", sim.cloneUrl("acme/ci", sim.mintToken("acme/ci")), dir], { env: GIT_ENV });
      await mkdir(join(dir, ".github/workflows"), { recursive: true });
      await writeFile(join(dir, ".github/workflows/ci.yml"), "on: push\n");
      await gitIn(dir, "add", "-A");
      await gitIn(dir, "commit", "-qm", "ci");
      await gitIn(dir, "push", "-q", "origin", "HEAD:refs/heads/agent/4-ci");
      expect(await sim.readFile("acme/ci", "agent/4-ci", ".github/workflows/ci.yml")).toBe("on: push\n");
    } finally {
      await sim.stop();
    }
  });
});

describe("issues, comments, labels, contents", () => {
  it("paginates comments with Link headers, shares numbers with PRs, manages labels and reactions", async () => {
    const issue = gh.createIssue("acme/shop", {
      title: "Add tax",
      body: "please",
      user: "alice",
      labels: ["ai-agent"],
    });
    // Issues and pull requests share one sequence.
    expect(issue.number).toBe(Math.max(...(await gh.pulls("acme/shop")).map((p) => p.number)) + 1);
    const octokit = octokitFor(gh.mintToken("acme/shop"));
    const ref = { owner: "acme", repo: "shop", issue_number: issue.number };
    for (let i = 0; i < 7; i++) await octokit.issues.createComment({ ...ref, body: `c${i}` });
    const page1 = await octokit.issues.listComments({ ...ref, per_page: 3 });
    expect(page1.data).toHaveLength(3);
    expect(page1.headers.link).toContain('rel="next"');
    const all = await octokit.paginate(octokit.issues.listComments, { ...ref, per_page: 3 });
    expect(all.map((c) => c.body)).toEqual(["c0", "c1", "c2", "c3", "c4", "c5", "c6"]);

    const first = all[0]!;
    await octokit.issues.updateComment({ owner: "acme", repo: "shop", comment_id: first.id, body: "edited" });
    expect(gh.comments("acme/shop", issue.number)[0]?.body).toBe("edited");

    await octokit.reactions.createForIssue({ ...ref, content: "eyes" });
    await octokit.reactions.createForIssueComment({
      owner: "acme",
      repo: "shop",
      comment_id: first.id,
      content: "eyes",
    });
    expect(gh.reactions("acme/shop", issue.number)).toEqual([{ user: gh.botLogin, content: "eyes" }]);
    expect(gh.reactions("acme/shop", issue.number, first.id)).toHaveLength(1);

    await octokit.issues.createLabel({
      owner: "acme",
      repo: "shop",
      name: "needs-clarification",
      color: "FBCA04",
      description: "Agent needs more info",
    });
    await expect(
      octokit.issues.createLabel({ owner: "acme", repo: "shop", name: "needs-clarification" }),
    ).rejects.toMatchObject({ status: 422 });
    await octokit.issues.addLabels({ ...ref, labels: ["needs-clarification"] });
    await octokit.issues.removeLabel({ ...ref, name: "ai-agent" });
    expect(gh.labels("acme/shop", issue.number)).toEqual(["needs-clarification"]);
    await expect(octokit.issues.removeLabel({ ...ref, name: "ai-agent" })).rejects.toMatchObject({ status: 404 });
    expect((await octokit.issues.listLabelsOnIssue(ref)).data.map((l) => l.color)).toEqual(["FBCA04"]);
    expect((await octokit.issues.get(ref)).data.user?.login).toBe("alice");
  });

  it("serves file contents at a ref and collaborator permissions", async () => {
    const octokit = octokitFor(gh.mintToken("acme/shop"));
    const file = await octokit.repos.getContent({ owner: "acme", repo: "shop", path: "risk-policy.json", ref: "main" });
    expect(Buffer.from((file.data as { content: string }).content, "base64").toString()).toBe('{"version":"1"}\n');
    await expect(octokit.repos.getContent({ owner: "acme", repo: "shop", path: "nope.json" })).rejects.toMatchObject({
      status: 404,
    });
    const perm = await octokit.repos.getCollaboratorPermissionLevel({
      owner: "acme",
      repo: "shop",
      username: "mallory",
    });
    expect(perm.data.permission).toBe("read");
    gh.setPermission("mallory", "none");
    expect(
      (await octokit.repos.getCollaboratorPermissionLevel({ owner: "acme", repo: "shop", username: "mallory" })).data
        .permission,
    ).toBe("none");
    expect(await gh.readFile("acme/shop", "agent/1-add-tax", "src/tax.ts")).toContain("tax");
    const sha = await gh.commitFiles(
      "acme/shop",
      "main",
      { ".claude/hooks/check.sh": "#!/bin/sh\nexit 0\n", "README.md": null },
      "human edit",
    );
    expect(await gh.branchSha("acme/shop", "main")).toBe(sha);
    expect(await gh.readFile("acme/shop", "main", "README.md")).toBeUndefined();
    const { stdout } = await run("git", ["ls-tree", "main", ".claude/hooks/check.sh"], {
      cwd: join(gh.bareDir("acme/shop")),
      env: GIT_ENV,
    });
    expect(stdout).toMatch(/^100755 /);
    expect(
      gh.requests.some((r) => r.path === "/api/v3/repos/acme/shop/contents/risk-policy.json" && r.status === 200),
    ).toBe(true);
  });

  it("rejects missing, unknown, revoked and expired tokens with 401", async () => {
    const revoked = gh.mintToken("acme/shop");
    await octokitFor(revoked).apps.revokeInstallationAccessToken();
    await expect(octokitFor(revoked).repos.get({ owner: "acme", repo: "shop" })).rejects.toMatchObject({ status: 401 });
    const token = gh.mintToken("acme/shop");
    gh.expireToken(token);
    await expect(octokitFor(token).repos.get({ owner: "acme", repo: "shop" })).rejects.toMatchObject({ status: 401 });
    await expect(
      new Octokit({ baseUrl: gh.apiUrl, log: quiet }).repos.get({ owner: "acme", repo: "shop" }),
    ).rejects.toMatchObject({ status: 401 });
  });
});

import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GitHubSim, startGitHubSim } from "./index.ts";

/** The simulator's Git Data API: real objects in the bare repository, GitHub's refusals. */

let gh: GitHubSim;
let api: Octokit;
const owner = "acme";
const repo = "data";

beforeAll(async () => {
  gh = await startGitHubSim();
  await gh.createRepo(`${owner}/${repo}`, { "README.md": "# data\n", "docs/a.md": "a\n" });
  api = new Octokit({ baseUrl: gh.apiUrl, auth: gh.mintToken(`${owner}/${repo}`) });
});
afterAll(async () => {
  await gh?.stop();
});

async function commitOn(parent: string, files: Record<string, string | null>, message: string) {
  const base = await api.rest.git.getCommit({ owner, repo, commit_sha: parent });
  const tree = await api.rest.git.createTree({
    owner,
    repo,
    base_tree: base.data.tree.sha,
    tree: Object.entries(files).map(([path, content]) =>
      content === null
        ? { path, mode: "100644" as const, type: "blob" as const, sha: null }
        : { path, mode: "100644" as const, type: "blob" as const, content },
    ),
  });
  return (await api.rest.git.createCommit({ owner, repo, message, tree: tree.data.sha, parents: [parent] })).data;
}

describe("git data API", () => {
  it("builds trees on a base tree, commits and creates a branch", async () => {
    const main = (await api.rest.git.getRef({ owner, repo, ref: "heads/main" })).data.object.sha;
    const commit = await commitOn(main, { "x/y/new.md": "new\n", "docs/a.md": null }, "add new, drop a");
    expect(commit.parents.map((p) => p.sha)).toEqual([main]);
    expect(commit.message).toBe("add new, drop a");
    await api.rest.git.createRef({ owner, repo, ref: "refs/heads/feature", sha: commit.sha });
    expect(await gh.branchSha(`${owner}/${repo}`, "feature")).toBe(commit.sha);
    expect(await gh.readFile(`${owner}/${repo}`, "feature", "x/y/new.md")).toBe("new\n");
    expect(await gh.readFile(`${owner}/${repo}`, "feature", "README.md")).toBe("# data\n");
    expect(await gh.readFile(`${owner}/${repo}`, "feature", "docs/a.md")).toBeUndefined();
    await expect(
      api.rest.git.createRef({ owner, repo, ref: "refs/heads/feature", sha: commit.sha }),
    ).rejects.toMatchObject({ status: 422, message: expect.stringContaining("Reference already exists") });
  });

  it("refuses a non-fast-forward update unless forced", async () => {
    const main = (await api.rest.git.getRef({ owner, repo, ref: "heads/main" })).data.object.sha;
    const other = await commitOn(main, { "other.md": "o\n" }, "other");
    await expect(api.rest.git.updateRef({ owner, repo, ref: "heads/feature", sha: other.sha })).rejects.toMatchObject({
      status: 422,
      message: expect.stringContaining("not a fast forward"),
    });
    await api.rest.git.updateRef({ owner, repo, ref: "heads/feature", sha: other.sha, force: true });
    expect(await gh.branchSha(`${owner}/${repo}`, "feature")).toBe(other.sha);
    await expect(
      api.rest.git.updateRef({ owner, repo, ref: "heads/missing", sha: other.sha, force: true }),
    ).rejects.toMatchObject({ status: 422 });
    await expect(api.rest.git.getRef({ owner, repo, ref: "heads/missing" })).rejects.toMatchObject({ status: 404 });
  });

  it("needs contents write", async () => {
    const reader = new Octokit({ baseUrl: gh.apiUrl, auth: gh.mintToken(`${owner}/${repo}`, { contents: "read" }) });
    const main = (await reader.rest.git.getRef({ owner, repo, ref: "heads/main" })).data.object.sha;
    await expect(reader.rest.git.createRef({ owner, repo, ref: "refs/heads/nope", sha: main })).rejects.toMatchObject({
      status: 403,
    });
  });
});

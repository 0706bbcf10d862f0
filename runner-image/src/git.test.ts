import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { checkedOutBranch, Git } from "./git.ts";
import { createRedactor } from "./hooks/redact.ts";

const env = {
  PATH: process.env.PATH ?? "",
  HOME: os.tmpdir(),
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_AUTHOR_NAME: "t",
  GIT_AUTHOR_EMAIL: "t@example.invalid",
  GIT_COMMITTER_NAME: "t",
  GIT_COMMITTER_EMAIL: "t@example.invalid",
};
const sh = (args: string[], cwd: string) => execFileSync("git", args, { cwd, env }).toString().trim();

let root: string;
let git: Git;
let work: string;

/** A forge reached over file://: `<root>/forge/acme/calc.git` with main and one agent branch. */
beforeEach(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "af-git-"));
  const bare = path.join(root, "forge/acme/calc.git");
  fs.mkdirSync(bare, { recursive: true });
  sh(["init", "--quiet", "--bare", "--initial-branch=main", bare], root);
  const seed = path.join(root, "seed");
  sh(["init", "--quiet", "--initial-branch=main", seed], root);
  fs.mkdirSync(path.join(seed, ".claude"));
  fs.writeFileSync(path.join(seed, ".claude/settings.json"), '{"hooks":{}}\n');
  fs.writeFileSync(path.join(seed, "a.txt"), "a\n");
  sh(["add", "-A"], seed);
  sh(["commit", "--quiet", "-m", "seed"], seed);
  sh(["push", "--quiet", bare, "main", "main:refs/heads/agent/1-x"], seed);
  work = path.join(root, "ws/repo");
  git = new Git({
    gitDir: path.join(root, "home/.agentfactory/repo.git"),
    workTree: work,
    serverUrl: `file://${path.join(root, "forge")}`,
    repo: "acme/calc",
    token: "",
    redact: createRedactor([]),
  });
  await git.init();
  await git.fetch();
  await git.checkout("agent/1-x", "origin/agent/1-x");
  await git.prepareAgentRepo("agent/1-x");
});

describe("Git on a private git directory", () => {
  it("keeps its git directory outside the work tree, mode 0700, and gives the agent a separate .git", () => {
    expect(fs.statSync(path.dirname(git.gitDir)).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(path.join(work, "a.txt"), "utf8")).toBe("a\n");
    expect(sh(["status", "--porcelain"], work)).toBe("");
    expect(sh(["rev-parse", "--abbrev-ref", "HEAD"], work)).toBe("agent/1-x");
    expect(sh(["config", "--get", "remote.origin.url"], work)).toBe(git.cloneUrl());
    expect(fs.existsSync(path.join(work, ".git/objects/info/alternates"))).toBe(false);
  });

  it("commits the work tree and pushes by explicit refspec, ignoring what the agent put in its .git", async () => {
    const fired = path.join(root, "fired");
    const payload = `#!/bin/sh\necho "$0" >> ${fired}\n`;
    fs.writeFileSync(path.join(work, ".git/hooks/post-commit"), payload, { mode: 0o755 });
    fs.appendFileSync(
      path.join(work, ".git/config"),
      `[core]\n\tfsmonitor = ${path.join(work, ".git/hooks/post-commit")}\n[remote "origin"]\n\tpush = +HEAD:refs/heads/main\n`,
    );
    fs.writeFileSync(path.join(work, "b.txt"), "b\n");
    expect(await git.commitAll("add b")).toBe(true);
    const head = await git.push("agent/1-x");
    expect(fs.existsSync(fired)).toBe(false);
    const bare = path.join(root, "forge/acme/calc.git");
    expect(sh(["rev-parse", "refs/heads/agent/1-x"], bare)).toBe(head);
    expect(sh(["rev-parse", "refs/heads/main"], bare)).not.toBe(head);
    expect(sh(["ls-tree", "-r", "--name-only", head], bare).split("\n")).toEqual([
      ".claude/settings.json",
      "a.txt",
      "b.txt",
    ]);
    // Positive control: the agent's own git does fire it.
    sh(["commit", "--allow-empty", "--quiet", "-m", "x"], work);
    expect(fs.existsSync(fired)).toBe(true);
  });

  it("pushes only agent branches", async () => {
    for (const b of ["main", "agent/../main", "refs/heads/main", "agent/1-x:main", "agent/a b"])
      await expect(git.push(b), b).rejects.toThrow(/only agent/);
  });

  it("refuses to run once someone else changed its config", async () => {
    fs.appendFileSync(path.join(git.gitDir, "config"), "[core]\n\tfsmonitor = /bin/true\n");
    await expect(git.head()).rejects.toThrow(/modified by someone else/);
  });

  it("writes a tree, or one directory of it, into another work tree without touching its own index", async () => {
    const copy = git.withWorkTree(path.join(root, "copy"));
    fs.writeFileSync(path.join(work, "a.txt"), "changed\n");
    expect(await copy.writeFiles("origin/main")).toBe(2);
    expect(fs.readFileSync(path.join(root, "copy/a.txt"), "utf8")).toBe("a\n");
    fs.rmSync(path.join(root, "copy/.claude"), { recursive: true });
    expect(await copy.writeFiles("origin/main", ".claude")).toBe(1);
    expect(fs.existsSync(path.join(root, "copy/.claude/settings.json"))).toBe(true);
    expect(await git.workTreeChanges()).toEqual([" M a.txt"]);
  });
});

describe("checkedOutBranch reads .git/HEAD without running git", () => {
  it("follows HEAD, a gitdir: file, and answers undefined when detached or absent", () => {
    expect(checkedOutBranch(work)).toBe("agent/1-x");
    const linked = path.join(root, "linked");
    fs.mkdirSync(linked);
    fs.writeFileSync(path.join(linked, ".git"), `gitdir: ${path.join(work, ".git")}\n`);
    expect(checkedOutBranch(linked)).toBe("agent/1-x");
    fs.writeFileSync(path.join(work, ".git/HEAD"), `${"0".repeat(40)}\n`);
    expect(checkedOutBranch(work)).toBeUndefined();
    expect(checkedOutBranch(path.join(root, "nowhere"))).toBeUndefined();
  });
});

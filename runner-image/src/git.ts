import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Redactor } from "./hooks/redact.ts";

export const BOT_NAME = "AgentFactory Bot";
export const BOT_EMAIL = "agent@agentfactory.dev";

export class GitError extends Error {}

export interface GitOptions {
  /** The runner's own git directory, outside the workspace (mode 0700). The agent never sees it. */
  gitDir: string;
  /** The checked-out files: the agent's workspace (`<workspace>/repo`) or a pristine review checkout. */
  workTree: string;
  serverUrl: string;
  /** `owner/name` */
  repo: string;
  /** Installation token; reaches git only through the environment of network operations (GIT_CONFIG_*). */
  token: string;
  redact: Redactor;
  path?: string;
}

/**
 * Configuration forced on every git call, over whatever a config file says: no hooks, no fsmonitor,
 * no credential helpers, no submodule recursion (a nested repository's own git would read its config).
 * Filters, diff and merge drivers need a `filter.<name>.*` (…) entry to run, and the only config git
 * reads is the runner's own (see `env()`), which has none.
 */
const FORCED_CONFIG = [
  "core.hooksPath=/dev/null",
  "core.fsmonitor=false",
  "core.sshCommand=false",
  "credential.helper=",
  "submodule.recurse=false",
  "fetch.recurseSubmodules=false",
  "push.recurseSubmodules=no",
  "diff.ignoreSubmodules=all",
  "branch.autoSetupMerge=false",
  "commit.gpgSign=false",
  "gc.auto=0",
  "maintenance.auto=false",
  "protocol.allow=never",
  "protocol.https.allow=always",
  "protocol.http.allow=always",
  "protocol.file.allow=always",
].flatMap((kv) => ["-c", kv]);

/**
 * The real `git` binary on a git directory only the runner owns (`--git-dir`), with the agent's
 * files as its work tree (`--work-tree`). Whatever the agent writes into its own `.git` (hooks,
 * config, fsmonitor, aliases, remotes) is never read: the system and global config are off, HOME is
 * the runner's private directory, and the token is passed only to fetch/push/ls-remote, as an
 * `http.<server>/.extraHeader` in git's own environment (never argv, a URL, a config file or a log).
 */
export class Git {
  private configDigest: string | undefined;

  constructor(private readonly opts: GitOptions) {}

  get workTree(): string {
    return this.opts.workTree;
  }

  get gitDir(): string {
    return this.opts.gitDir;
  }

  /** The same private git directory with another work tree (the review's test copy). */
  withWorkTree(workTree: string): Git {
    const other = new Git({ ...this.opts, workTree });
    other.configDigest = this.configDigest;
    return other;
  }

  private env(auth: boolean, extra: Record<string, string> = {}): Record<string, string> {
    const basic = Buffer.from(`x-access-token:${this.opts.token}`).toString("base64");
    return {
      PATH: this.opts.path ?? process.env.PATH ?? "/usr/bin:/bin",
      HOME: path.dirname(this.opts.gitDir),
      LANG: "C.UTF-8",
      GIT_TERMINAL_PROMPT: "0",
      GIT_AUTHOR_NAME: BOT_NAME,
      GIT_AUTHOR_EMAIL: BOT_EMAIL,
      GIT_COMMITTER_NAME: BOT_NAME,
      GIT_COMMITTER_EMAIL: BOT_EMAIL,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_ATTR_NOSYSTEM: "1",
      ...(auth && this.opts.token
        ? {
            GIT_CONFIG_COUNT: "1",
            GIT_CONFIG_KEY_0: `http.${this.opts.serverUrl.replace(/\/?$/, "/")}.extraHeader`,
            GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
          }
        : {}),
      ...extra,
    };
  }

  /**
   * Runs git on the private git directory and returns stdout; errors carry redacted stderr. `auth`
   * (network operations only) adds the token; `workTree` overrides the work tree for this call.
   */
  run(
    args: string[],
    {
      auth = false,
      workTree = this.opts.workTree,
      env,
    }: { auth?: boolean; workTree?: string | null; env?: Record<string, string> } = {},
  ): Promise<string> {
    this.checkConfig();
    const dirs = [`--git-dir=${this.opts.gitDir}`, ...(workTree ? [`--work-tree=${workTree}`] : [])];
    return runGit([...FORCED_CONFIG, ...dirs, ...args], this.env(auth, env), this.opts.redact);
  }

  cloneUrl(): string {
    return `${this.opts.serverUrl}/${this.opts.repo}.git`;
  }

  /** Creates the private git directory (mode 0700) unless it exists; returns whether it was new. */
  async init(): Promise<boolean> {
    if (fs.existsSync(path.join(this.opts.gitDir, "HEAD"))) {
      this.configDigest ??= digest(path.join(this.opts.gitDir, "config"));
      return false;
    }
    fs.mkdirSync(path.dirname(this.opts.gitDir), { recursive: true, mode: 0o700 });
    fs.chmodSync(path.dirname(this.opts.gitDir), 0o700);
    await runGit(
      [...FORCED_CONFIG, "init", "--quiet", "--bare", "--template=", this.opts.gitDir],
      this.env(false),
      this.opts.redact,
    );
    fs.chmodSync(this.opts.gitDir, 0o700);
    this.configDigest = digest(path.join(this.opts.gitDir, "config"));
    return true;
  }

  /** The runner's config never changes after `init`; a change means someone else wrote it. */
  private checkConfig(): void {
    if (this.configDigest === undefined) return;
    if (digest(path.join(this.opts.gitDir, "config")) !== this.configDigest)
      throw new GitError("the runner's git directory was modified by someone else; refusing to run git in it");
  }

  /** Fetches the branches into `origin/*` (shallow: only `branches`, tips only). */
  async fetch({ shallow = false, branches }: { shallow?: boolean; branches?: string[] } = {}): Promise<void> {
    const refspecs = branches?.length
      ? branches.map((b) => `+refs/heads/${b}:refs/remotes/origin/${b}`)
      : ["+refs/heads/*:refs/remotes/origin/*"];
    const depth = shallow ? ["--depth", "1"] : [];
    await this.run(["fetch", "--quiet", "--no-tags", "--prune", ...depth, "--", this.cloneUrl(), ...refspecs], {
      auth: true,
      workTree: null,
    });
  }

  /** Puts `branch` at `start` and makes the work tree match it exactly (files only the agent left are kept). */
  async checkout(branch: string, start: string): Promise<void> {
    fs.mkdirSync(this.opts.workTree, { recursive: true });
    await this.run(["checkout", "--quiet", "--force", "-B", branch, start]);
  }

  async hasRef(ref: string): Promise<boolean> {
    return this.run(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], { workTree: null }).then(
      () => true,
      () => false,
    );
  }

  async head(): Promise<string> {
    return (await this.run(["rev-parse", "HEAD"], { workTree: null })).trim();
  }

  async currentBranch(): Promise<string> {
    return (await this.run(["rev-parse", "--abbrev-ref", "HEAD"], { workTree: null })).trim();
  }

  /** A file as committed at `ref`, or undefined when it is not there. */
  async show(ref: string, file: string): Promise<string | undefined> {
    return this.run(["show", `${ref}:${file}`], { workTree: null }).catch(() => undefined);
  }

  /** Stages everything in the work tree and commits when there is something to commit; returns whether it did. */
  async commitAll(message: string): Promise<boolean> {
    await this.run(["add", "--all"]);
    const staged = await this.run(["diff", "--cached", "--name-only"]);
    if (!staged.trim()) return false;
    // The message leaves the pod with the push (it carries the ticket's title).
    await this.run(["commit", "--quiet", "--no-verify", "-m", this.opts.redact(message)]);
    return true;
  }

  async changedFiles(base: string, head = "HEAD"): Promise<string[]> {
    const out = await this.run(["diff", "--name-only", "--no-renames", `${base}...${head}`], { workTree: null });
    return out.split("\n").filter(Boolean);
  }

  /**
   * Writes the files of `treeish` (only those under `dir` when given) into the work tree, through a
   * throwaway index: the runner's own index and HEAD stay as they are. Returns how many it wrote.
   */
  async writeFiles(treeish: string, dir?: string): Promise<number> {
    const index = path.join(this.opts.gitDir, `export-${process.pid}-${Date.now()}.index`);
    const env = { GIT_INDEX_FILE: index };
    try {
      await this.run(["read-tree", treeish], { env, workTree: null });
      const files = (await this.run(["ls-files", "-z", "--", ...(dir ? [dir] : [])], { env }))
        .split("\0")
        .filter(Boolean);
      fs.mkdirSync(this.opts.workTree, { recursive: true });
      for (let i = 0; i < files.length; i += 500)
        await this.run(["checkout-index", "--force", "--", ...files.slice(i, i + 500)], { env });
      return files.length;
    } finally {
      fs.rmSync(index, { force: true });
    }
  }

  /** What differs between the work tree and HEAD (changed, new and ignored files), empty when it is pristine. */
  async workTreeChanges(): Promise<string[]> {
    const out = await this.run(["status", "--porcelain", "--untracked-files=all", "--ignored", "--no-renames"]);
    return out.split("\n").filter(Boolean);
  }

  /** The commit a branch points at on the forge, or undefined when it does not exist there. */
  async remoteSha(branch: string): Promise<string | undefined> {
    const out = await this.run(["ls-remote", "--", this.cloneUrl(), `refs/heads/${branch}`], {
      auth: true,
      workTree: null,
    });
    return out.split(/\s/)[0] || undefined;
  }

  /**
   * Pushes HEAD to `refs/heads/<branch>` by explicit refspec to the repository's URL (no configured
   * remote or push refspec is consulted), then checks that the forge's branch is exactly that commit.
   * Only agent branches (`agent/…`) are pushed.
   */
  async push(branch: string): Promise<string> {
    if (!/^agent\/[\w.-]+$/.test(branch) || branch.includes(".."))
      throw new GitError(`refusing to push to ${branch}: the runner pushes only agent/… branches`);
    const head = await this.head();
    await this.run(["push", "--quiet", "--no-verify", "--", this.cloneUrl(), `${head}:refs/heads/${branch}`], {
      auth: true,
      workTree: null,
    });
    const remote = await this.remoteSha(branch);
    if (remote !== head) throw new GitError(`pushed ${head} to ${branch}, but the forge has ${remote ?? "nothing"}`);
    return head;
  }

  /**
   * Gives the agent a `.git` of its own in the work tree: a plain copy of the history (objects copied
   * from the private directory, never shared), HEAD on `branch`, the forge as `origin` without any
   * credential. Rebuilt from scratch, so nothing an earlier session left there survives; the runner
   * never runs git in it afterwards.
   */
  async prepareAgentRepo(branch: string): Promise<void> {
    const agentDir = path.join(this.opts.workTree, ".git");
    fs.rmSync(agentDir, { recursive: true, force: true });
    const env = this.env(false);
    const agent = [...FORCED_CONFIG, `--git-dir=${agentDir}`];
    const g = (args: string[], workTree = false) =>
      runGit([...agent, ...(workTree ? [`--work-tree=${this.opts.workTree}`] : []), ...args], env, this.opts.redact);
    await runGit([...FORCED_CONFIG, "init", "--quiet", "--bare", agentDir], env, this.opts.redact);
    await g(["config", "core.bare", "false"]);
    await g(["config", "remote.origin.url", this.cloneUrl()]);
    await g(["config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"]);
    const head = await this.head();
    await g([
      "fetch",
      "--quiet",
      "--no-tags",
      "--update-head-ok",
      "--",
      this.opts.gitDir,
      "+refs/remotes/origin/*:refs/remotes/origin/*",
      `+${head}:refs/heads/${branch}`,
    ]);
    await g(["symbolic-ref", "HEAD", `refs/heads/${branch}`]);
    await g(["reset", "--quiet"], true);
  }
}

function runGit(args: string[], env: Record<string, string>, redact: Redactor): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("git", args, { env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const sub = args.find((a, i) => !a.startsWith("-") && args[i - 1] !== "-c") ?? "?";
      if (err) reject(new GitError(redact(`git ${sub} failed: ${String(stderr || err.message).trim()}`)));
      else resolve(stdout);
    });
  });
}

function digest(file: string): string {
  try {
    return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
  } catch {
    return "missing";
  }
}

/**
 * The branch checked out in a `.git` the agent controls, read as a file (never by running git in it:
 * its config could make git run code). Follows a `gitdir:` file (worktrees); undefined when detached
 * or not a repository.
 */
export function checkedOutBranch(dir: string): string | undefined {
  try {
    let gitDir = path.join(dir, ".git");
    if (fs.statSync(gitDir).isFile()) {
      const m = /^gitdir:\s*(.+)$/m.exec(fs.readFileSync(gitDir, "utf8").slice(0, 4096));
      if (!m?.[1]) return undefined;
      gitDir = path.resolve(dir, m[1].trim());
    }
    const head = path.join(gitDir, "HEAD");
    if (!fs.lstatSync(head).isFile()) return undefined;
    const ref = /^ref:\s*refs\/heads\/(\S+)\s*$/.exec(fs.readFileSync(head, "utf8").slice(0, 4096));
    return ref?.[1];
  } catch {
    return undefined;
  }
}

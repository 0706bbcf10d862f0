import { execFile } from "node:child_process";
import type { Redactor } from "./hooks/redact.ts";

export const BOT_NAME = "AgentFactory Bot";
export const BOT_EMAIL = "agent@agentfactory.dev";

export class GitError extends Error {}

export interface GitOptions {
  cwd: string;
  serverUrl: string;
  /** Installation token; reaches git only through its environment (GIT_CONFIG_*), never argv or URLs. */
  token: string;
  redact: Redactor;
  path?: string;
  home?: string;
}

/**
 * The real `git` binary, authenticated by an `http.<server>/.extraHeader` passed in git's own
 * environment (GIT_CONFIG_COUNT/KEY/VALUE), so the token is in no argument, URL, config file or log.
 */
export class Git {
  constructor(private readonly opts: GitOptions) {}

  private env(): Record<string, string> {
    const basic = Buffer.from(`x-access-token:${this.opts.token}`).toString("base64");
    return {
      PATH: this.opts.path ?? process.env.PATH ?? "/usr/bin:/bin",
      HOME: this.opts.home ?? process.env.HOME ?? "/tmp",
      LANG: "C.UTF-8",
      GIT_TERMINAL_PROMPT: "0",
      GIT_AUTHOR_NAME: BOT_NAME,
      GIT_AUTHOR_EMAIL: BOT_EMAIL,
      GIT_COMMITTER_NAME: BOT_NAME,
      GIT_COMMITTER_EMAIL: BOT_EMAIL,
      GIT_CONFIG_NOSYSTEM: "1",
      ...(this.opts.token
        ? {
            GIT_CONFIG_COUNT: "1",
            GIT_CONFIG_KEY_0: `http.${this.opts.serverUrl.replace(/\/?$/, "/")}.extraHeader`,
            GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
          }
        : {}),
    };
  }

  /** Runs git and returns stdout; errors carry redacted stderr. */
  run(args: string[], cwd = this.opts.cwd): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile("git", args, { cwd, env: this.env(), maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err)
          reject(new GitError(this.opts.redact(`git ${args[0]} failed: ${String(stderr || err.message).trim()}`)));
        else resolve(stdout);
      });
    });
  }

  cloneUrl(repo: string): string {
    return `${this.opts.serverUrl}/${repo}.git`;
  }

  /** Clones one branch; `shallow` fetches only its tip (triage only reads files). */
  async clone(repo: string, dir: string, branch: string, { shallow = false } = {}): Promise<void> {
    const depth = shallow ? ["--depth", "1"] : [];
    await this.run(["clone", "--quiet", ...depth, "--branch", branch, "--", this.cloneUrl(repo), dir], process.cwd());
  }

  async remoteBranchExists(branch: string): Promise<boolean> {
    const out = await this.run(["ls-remote", "--heads", "origin", `refs/heads/${branch}`]);
    return out.trim().length > 0;
  }

  async head(): Promise<string> {
    return (await this.run(["rev-parse", "HEAD"])).trim();
  }

  async currentBranch(): Promise<string> {
    return (await this.run(["rev-parse", "--abbrev-ref", "HEAD"])).trim();
  }

  /** Stages everything and commits when there is something to commit; returns whether it committed. */
  async commitAll(message: string): Promise<boolean> {
    await this.run(["add", "-A"]);
    const staged = await this.run(["diff", "--cached", "--name-only"]);
    if (!staged.trim()) return false;
    await this.run(["commit", "--quiet", "--no-verify", "-m", message]);
    return true;
  }

  async changedFiles(base: string, head = "HEAD"): Promise<string[]> {
    const out = await this.run(["diff", "--name-only", `${base}...${head}`]);
    return out.split("\n").filter(Boolean);
  }

  async push(branch: string): Promise<void> {
    await this.run(["push", "--quiet", "origin", `HEAD:refs/heads/${branch}`]);
  }
}

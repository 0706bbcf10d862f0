import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { isCreation, type RefUpdate } from "./pktline.ts";

/**
 * What a push changes, read before it is forwarded. The client's pack is thin (deltas against
 * objects the forge already has), so it can only be read next to those objects: the gateway keeps a
 * bare mirror per repository in its cache directory, brings it up to date from the forge (with the
 * stage's token) before each push, and indexes the pushed pack into a throwaway quarantine object
 * directory with the mirror as its alternate (`git index-pack --stdin --fix-thin`), as git's own
 * receive-pack quarantines incoming objects. The new commits are those reachable from the pushed
 * head and not from the branch's old head or the default branch; every path each of them touches
 * (against its first parent, renames as delete + add) is returned. The mirror itself never receives
 * the pushed objects: the original request bytes are what is forwarded.
 */
export class PushInspector {
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: { cacheDir: string; gitUrl: string }) {}

  /** Paths touched by the commits the updates would add; throws when the pack cannot be read. */
  async touchedPaths(repo: string, token: string, updates: RefUpdate[], pack: Buffer): Promise<string[]> {
    const [owner, name] = repo.split("/");
    if (!owner || !name || [owner, name].some((p) => p === "." || p === ".." || !/^[\w.-]+$/.test(p))) {
      throw new Error(`not a repository name: ${repo}`);
    }
    return this.locked(repo.toLowerCase(), async () => {
      const mirror = join(this.opts.cacheDir, "mirrors", owner.toLowerCase(), `${name.toLowerCase()}.git`);
      await this.refresh(mirror, `${this.opts.gitUrl}/${owner}/${name}.git`, token);
      await mkdir(join(this.opts.cacheDir, "tmp"), { recursive: true });
      const quarantine = await mkdtemp(join(this.opts.cacheDir, "tmp", "push-"));
      try {
        const objects = join(quarantine, "objects");
        await mkdir(join(objects, "pack"), { recursive: true });
        const env = {
          GIT_DIR: mirror,
          GIT_OBJECT_DIRECTORY: objects,
          GIT_ALTERNATE_OBJECT_DIRECTORIES: join(mirror, "objects"),
        };
        if (pack.length > 0) await git(["index-pack", "--stdin", "--fix-thin"], { env, cwd: quarantine, input: pack });
        const head = (await git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], { env }).catch(() => "")).trim();
        const paths = new Set<string>();
        for (const u of updates) {
          const not = [...(isCreation(u) ? [] : [u.old]), ...(head ? [head] : [])];
          await git(["cat-file", "-e", `${u.new}^{commit}`], { env }).catch(() => {
            throw new Error(`the pushed commit ${u.new} is not in the pack`);
          });
          const out = await git(
            [
              "log",
              "-z",
              "--format=",
              "--name-only",
              "--no-renames",
              "--diff-merges=first-parent",
              u.new,
              ...(not.length ? ["--not", ...not] : []),
            ],
            { env },
          );
          for (const p of out.split("\0")) {
            const path = p.replace(/^\n+/, "");
            if (path) paths.add(path);
          }
        }
        return [...paths];
      } finally {
        await rm(quarantine, { recursive: true, force: true });
      }
    });
  }

  /** Creates the mirror when missing and fetches every branch and the default branch name. */
  private async refresh(mirror: string, url: string, token: string): Promise<void> {
    if (!existsSync(join(mirror, "HEAD"))) {
      await mkdir(mirror, { recursive: true });
      await git(["init", "--quiet", "--bare", mirror], { env: {} });
    }
    const auth = {
      GIT_CONFIG_COUNT: "1",
      GIT_CONFIG_KEY_0: "http.extraHeader",
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from(`x-access-token:${token}`).toString("base64")}`,
    };
    const env = { GIT_DIR: mirror, ...auth };
    const symref = await git(["ls-remote", "--symref", url, "HEAD"], { env });
    const fetched = await git(
      ["fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head", url, "+refs/heads/*:refs/heads/*"],
      { env },
    ).then(
      () => true,
      (err: Error) => {
        // An empty repository has no branch to fetch.
        if (/couldn't find remote ref|no matching remote head/i.test(err.message)) return false;
        throw err;
      },
    );
    const def = /^ref: (refs\/heads\/\S+)\tHEAD$/m.exec(symref)?.[1];
    if (fetched && def) await git(["symbolic-ref", "HEAD", def], { env: { GIT_DIR: mirror } });
  }

  private locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => {});
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return run;
  }
}

/** git with no user or system configuration, no hooks, no prompts, no auto-gc; binary-safe stdin. */
function git(args: string[], opts: { env: Record<string, string>; cwd?: string; input?: Buffer }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "git",
      ["-c", "core.hooksPath=/dev/null", "-c", "gc.auto=0", "-c", "maintenance.auto=false", ...args],
      {
        cwd: opts.cwd ?? "/",
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: "/nonexistent",
          GIT_CONFIG_NOSYSTEM: "1",
          GIT_CONFIG_GLOBAL: "/dev/null",
          GIT_TERMINAL_PROMPT: "0",
          GIT_PROTOCOL_FROM_USER: "0",
          LANG: "C",
          ...opts.env,
        },
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => {
      if (err.length < 8192) err += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString("utf8"));
      // stderr never holds the token (it is only in the environment), but trim it anyway.
      else reject(new Error(`git ${args[0]} failed (${code}): ${err.trim().slice(0, 500)}`));
    });
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? Buffer.alloc(0));
  });
}

import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { requestStream } from "./http.ts";

/** Environment for every git we run: no user or system config leaks in, fixed identity. */
export const GIT_ENV: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  HOME: tmpdir(),
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_AUTHOR_NAME: "World Sim",
  GIT_AUTHOR_EMAIL: "sim@example.test",
  GIT_COMMITTER_NAME: "World Sim",
  GIT_COMMITTER_EMAIL: "sim@example.test",
  LANG: "C",
  // The simulator's own git (seeding, commitFiles) bypasses the forge's push rules.
  GHSIM_TRUSTED: "1",
};

/**
 * GitHub's push rules, as a pre-receive hook: protected branches refuse updates (GH006), and commits
 * touching `.github/workflows/` need the token's `workflows: write` permission. The HTTP handler passes
 * GHSIM_PROTECTED (space-separated branches) and GHSIM_WORKFLOWS (the token's level) in the environment.
 */
const PRE_RECEIVE = `#!/bin/sh
[ "$GHSIM_TRUSTED" = 1 ] && exit 0
zero=0000000000000000000000000000000000000000
status=0
while read old new ref; do
  branch=\${ref#refs/heads/}
  for p in $GHSIM_PROTECTED; do
    if [ "$p" = "$branch" ]; then
      echo "error: GH006: Protected branch update failed for $ref." >&2
      status=1
    fi
  done
  [ "$new" = "$zero" ] && continue
  [ "$GHSIM_WORKFLOWS" = write ] && continue
  if [ "$old" = "$zero" ]; then
    wf=$(git log --format= --name-only "$new" --not --all | grep '^\\.github/workflows/' | head -n 1)
  else
    wf=$(git log --format= --name-only "$old..$new" | grep '^\\.github/workflows/' | head -n 1)
  fi
  if [ -n "$wf" ]; then
    echo "refusing to allow a GitHub App to create or update workflow \\\`$wf\\\` without \\\`workflows\\\` permission" >&2
    status=1
  fi
done
exit $status
`;

export class GitFailed extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
    readonly code: number | null,
  ) {
    super(`git ${args.join(" ")} failed (${code}): ${stderr.trim()}`);
  }
}

export function git(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("git", args, { cwd, env: GIT_ENV, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new GitFailed(args, stderr, typeof err.code === "number" ? err.code : null));
      else resolve(stdout);
    });
  });
}

/** Like git() but binary-safe stdout (file contents). */
export function gitBuffer(cwd: string, args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile("git", args, { cwd, env: GIT_ENV, maxBuffer: 64 << 20, encoding: "buffer" }, (err, stdout, stderr) => {
      if (err) reject(new GitFailed(args, stderr.toString(), typeof err.code === "number" ? err.code : null));
      else resolve(stdout);
    });
  });
}

/** Creates `<root>/<owner>/<name>.git` with one real commit on `branch` holding `files`. */
export async function createBareRepo(
  root: string,
  fullName: string,
  files: Record<string, string>,
  branch: string,
): Promise<string> {
  const bare = join(root, `${fullName}.git`);
  await mkdir(dirname(bare), { recursive: true });
  await git(root, ["init", "--quiet", "--bare", "-b", branch, bare]);
  await git(bare, ["config", "http.receivepack", "true"]);
  await writeFile(join(bare, "hooks", "pre-receive"), PRE_RECEIVE, { mode: 0o755 });
  const work = await mkdtemp(join(tmpdir(), "ghsim-seed-"));
  try {
    await git(work, ["init", "--quiet", "-b", branch]);
    await writeFiles(work, files);
    await git(work, ["add", "-A"]);
    await git(work, ["commit", "--quiet", "--allow-empty", "-m", "Initial commit"]);
    await git(work, ["push", "--quiet", bare, `${branch}:refs/heads/${branch}`]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return bare;
}

/** Writes files into a work tree (null deletes); a file starting with "#!" is made executable. */
async function writeFiles(work: string, files: Record<string, string | null>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const target = join(work, path);
    if (content === null) {
      await rm(target, { force: true });
      continue;
    }
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, content, { mode: content.startsWith("#!") ? 0o755 : 0o644 });
  }
}

/**
 * Commits `files` on `branch` (created from `from` when missing) as a real git push into the bare
 * repository, e.g. a human pushing to main. Returns the new head SHA.
 */
export async function commitFiles(
  bare: string,
  branch: string,
  from: string,
  files: Record<string, string | null>,
  message: string,
): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), "ghsim-commit-"));
  try {
    const exists = (await revParse(bare, `refs/heads/${branch}`)) !== undefined;
    await git(work, ["clone", "--quiet", "--branch", exists ? branch : from, bare, "."]);
    if (!exists) await git(work, ["checkout", "--quiet", "-b", branch]);
    await writeFiles(work, files);
    await git(work, ["add", "-A"]);
    await git(work, ["commit", "--quiet", "--allow-empty", "-m", message]);
    await git(work, ["push", "--quiet", "origin", `HEAD:refs/heads/${branch}`]);
    return (await git(work, ["rev-parse", "HEAD"])).trim();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The commit a branch points at, or undefined when the branch does not exist. */
export async function revParse(bare: string, ref: string): Promise<string | undefined> {
  try {
    return (await git(bare, ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`])).trim();
  } catch {
    return undefined;
  }
}

export interface DiffFile {
  sha: string;
  filename: string;
  previous_filename?: string;
  status: "added" | "removed" | "modified" | "renamed";
  additions: number;
  deletions: number;
  changes: number;
  patch?: string;
}

const STATUS: Record<string, DiffFile["status"]> = {
  A: "added",
  D: "removed",
  M: "modified",
  R: "renamed",
  T: "modified",
};

/** Changed files of `base...head` (three-dot, against the merge base) as GitHub's PR files API reports them. */
export async function diffFiles(bare: string, base: string, head: string): Promise<DiffFile[]> {
  const range = `${base}...${head}`;
  const [raw, numstat, patch] = await Promise.all([
    git(bare, ["diff", "--raw", "-z", "--no-abbrev", "-M", range]),
    git(bare, ["diff", "--numstat", "-z", "-M", range]),
    git(bare, ["diff", "-M", "--no-color", "--no-ext-diff", range]),
  ]);
  const files: DiffFile[] = [];
  const rawParts = raw.split("\0");
  for (let i = 0; i < rawParts.length - 1; ) {
    const meta = rawParts[i++] ?? "";
    const [, , oldSha, newSha, code = ""] = meta.slice(1).split(" ");
    const letter = code.charAt(0);
    const from = rawParts[i++] ?? "";
    const to = letter === "R" || letter === "C" ? (rawParts[i++] ?? "") : from;
    files.push({
      sha: letter === "D" ? (oldSha ?? "") : (newSha ?? ""),
      filename: to,
      ...(letter === "R" ? { previous_filename: from } : {}),
      status: STATUS[letter] ?? "modified",
      additions: 0,
      deletions: 0,
      changes: 0,
    });
  }
  // numstat -z: "add\tdel\tpath\0" or, for renames, "add\tdel\t\0from\0to\0".
  const ns = numstat.split("\0");
  for (let i = 0; i < ns.length - 1; ) {
    const [add = "0", del = "0", path = ""] = (ns[i++] ?? "").split("\t");
    let name = path;
    if (path === "") {
      i++; // the rename's source path; the destination follows
      name = ns[i++] ?? "";
    }
    const file = files.find((f) => f.filename === name);
    if (!file) continue;
    file.additions = add === "-" ? 0 : Number(add);
    file.deletions = del === "-" ? 0 : Number(del);
    file.changes = file.additions + file.deletions;
  }
  // GitHub's `patch` is the hunks only, from the first "@@".
  for (const chunk of patch.split(/^(?=diff --git )/m)) {
    const hunks = chunk.indexOf("\n@@");
    if (hunks < 0) continue;
    const plus = /^\+\+\+ b\/(.*)$/m.exec(chunk)?.[1] ?? /^--- a\/(.*)$/m.exec(chunk)?.[1];
    const file = files.find((f) => f.filename === plus);
    if (file) file.patch = chunk.slice(hunks + 1).replace(/\n$/, "");
  }
  return files;
}

/** Lines of the new file (RIGHT side) that a review comment may target: those inside a hunk. */
export function commentableLines(patch: string | undefined, side: "LEFT" | "RIGHT"): Set<number> {
  const lines = new Set<number>();
  if (!patch) return lines;
  let left = 0;
  let right = 0;
  for (const line of patch.split("\n")) {
    const hunk = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (hunk) {
      left = Number(hunk[1]);
      right = Number(hunk[2]);
      continue;
    }
    if (line.startsWith("+")) {
      if (side === "RIGHT") lines.add(right);
      right++;
    } else if (line.startsWith("-")) {
      if (side === "LEFT") lines.add(left);
      left++;
    } else if (!line.startsWith("\\")) {
      lines.add(side === "RIGHT" ? right : left);
      left++;
      right++;
    }
  }
  return lines;
}

/**
 * Runs the real `git http-backend` as a CGI for one smart-HTTP request: the request body (inflated
 * when gzip-encoded) streams to its stdin; its CGI headers become the HTTP status and headers.
 */
export function serveGitHttp(
  req: IncomingMessage,
  res: ServerResponse,
  opts: { projectRoot: string; pathInfo: string; query: string; remoteUser: string; env?: Record<string, string> },
): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn("git", ["http-backend"], {
      env: {
        ...GIT_ENV,
        GIT_PROJECT_ROOT: opts.projectRoot,
        GIT_HTTP_EXPORT_ALL: "1",
        PATH_INFO: opts.pathInfo,
        QUERY_STRING: opts.query,
        REQUEST_METHOD: req.method ?? "GET",
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        REMOTE_USER: opts.remoteUser,
        REMOTE_ADDR: req.socket.remoteAddress ?? "127.0.0.1",
        ...(req.headers["git-protocol"] ? { GIT_PROTOCOL: String(req.headers["git-protocol"]) } : {}),
        GHSIM_TRUSTED: "",
        ...opts.env,
      },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const body = requestStream(req);
    body.pipe(child.stdin);
    child.stdin.on("error", () => {});
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    let head = Buffer.alloc(0);
    let status = 200;
    let headersDone = false;
    child.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const crlf = head.indexOf("\r\n\r\n");
      const lf = head.indexOf("\n\n");
      const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
      if (end < 0) return;
      const sep = end === crlf ? 4 : 2;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString("latin1").split(/\r?\n/)) {
        const colon = line.indexOf(":");
        if (colon < 0) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 200;
        else headers[name] = value;
      }
      headersDone = true;
      res.writeHead(status, headers);
      res.write(head.subarray(end + sep));
    });
    // A client that goes away must not leave git processes behind.
    res.on("close", () => {
      if (child.exitCode === null) child.kill();
    });
    child.on("close", (code) => {
      if (!headersDone) {
        status = 500;
        res.writeHead(500, { "content-type": "text/plain" }).end(`git http-backend failed (${code}): ${stderr}`);
      } else {
        res.end();
      }
      resolve(status);
    });
  });
}

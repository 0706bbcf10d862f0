import path from "node:path";
import { parseShell, type SimpleCommand } from "./shell-parse.ts";

/**
 * The Bash safety gate: decides whether a shell command may run. It parses the command (quotes,
 * pipelines, substitutions, `sh -c`, `eval`) and checks each simple command, and also matches the raw
 * text for things that survive any parsing (SQL, credential paths, secret variables).
 */
export interface SafetyOptions {
  /** Absolute path of the workspace; destructive operations are confined to it (and /tmp). */
  workspace?: string;
  /** The only branch the agent may push to; when unset any `agent/…` branch is allowed. */
  branch?: string;
  /** The checked-out branch, when known: a bare `git push` pushes it. */
  currentBranch?: string;
  /** Files no command may mention (credential files mounted for the runner, e.g. GOOGLE_APPLICATION_CREDENTIALS). */
  protectedPaths?: string[];
}

export type SafetyVerdict = { allowed: true } | { allowed: false; reason: string };

const ALLOW: SafetyVerdict = { allowed: true };
const deny = (reason: string): SafetyVerdict => ({ allowed: false, reason });

/** Raw-text rules: [pattern, reason]. Case-insensitive unless the pattern says otherwise. */
const TEXT_RULES: [RegExp, string][] = [
  [/\bdrop\s+(table|database|schema|view|index|collection|keyspace|owned)\b/i, "drops a database object"],
  [/\btruncate\s+table\b|\bTRUNCATE\s+[A-Za-z_"`]/i, "truncates a table"],
  [/\bdelete\s+from\s+[`"\w.]+(?![^;]*\bwhere\b)/im, "DELETE without a WHERE clause"],
  [/\bwhere\s+(1\s*=\s*1|true|'(\w*)'\s*=\s*'\2'|1)\s*(;|$|["')])/im, "a WHERE clause that matches every row"],
  [/\bupdate\s+[`"\w.]+\s+set\s+(?![^;]*\bwhere\b)/im, "UPDATE without a WHERE clause"],
  [/\bdetach\s+delete\b(?![^;]*\bwhere\b)/i, "graph-wide DETACH DELETE"],
  [/\bflush(all|db)\b/i, "flushes a Redis database"],
  [
    /\.dropDatabase\s*\(|\.drop\s*\(\s*\)|\.(deleteMany|remove)\s*\(\s*\{\s*\}\s*\)/,
    "drops or empties a MongoDB collection",
  ],
  [/\b(db:drop|db:reset|migrate\s+reset|migrate:fresh|schema:drop)\b/i, "drops or resets a database"],
  [/\bmanage\.py\s+(flush|reset_db)\b/i, "empties the database"],
  [/:\(\)\s*\{.*:\s*\|\s*:.*\}/, "fork bomb"],
  [/\/dev\/(tcp|udp)\//, "raw network socket (reverse shell)"],
  [
    /\/proc\/(self|thread-self|\d+|\*|\$\w+|\$\{\w+\}|[^/\s]*\*[^/\s]*)\//,
    "reads another process's memory or environment via /proc",
  ],
  [/\/proc\/\S*environ|\/environ\b/, "reads a process environment"],
  [
    /\$\{?!?[A-Za-z_]*(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)[A-Za-z0-9_]*/i,
    "references a secret variable",
  ],
  [/\$\{?AWS_[A-Za-z0-9_]+/, "references an AWS credential variable"],
  [/\bprocess\.env\b(?!\.[A-Za-z_]|\[["'`])/, "dumps the process environment"],
  [/\bos\.environ\b(?!\s*\[|\.get\b)|\bENV\.to_h\b|\bSystem\.getenv\(\s*\)/, "dumps the process environment"],
  [/(^|[^\w.-])\.ssh\b|\bid_(rsa|dsa|ecdsa|ed25519)\b/, "reads SSH keys"],
  [
    /\b(rmtree|rmSync|rmdirSync|removeSync|remove_dir_all)\(\s*['"]?(\/|~|\$HOME|\.\.)/,
    "deletes outside the workspace",
  ],
  [
    /\.aws\/(credentials|config)|\.netrc\b|\.git-credentials|\.docker\/config\.json|\.kube\/config|\.pypirc\b/,
    "reads a credential file",
  ],
  [
    /(~|\$\{?HOME\}?)\/\.npmrc|\.config\/gh\/|application_default_credentials|\.config\/gcloud|\.gnupg\b/,
    "reads a credential file",
  ],
  [
    /\/(var\/)?run\/secrets\b|\/etc\/(shadow|gshadow|sudoers)\b|\/dev\/termination-log/,
    "touches a protected system path",
  ],
  [
    /\bcredential\.helper\b|\bextraheader\b|\bgit\s+credential\b|\bGIT_ASKPASS\b|\bGIT_CONFIG_(VALUE|KEY|COUNT)/i,
    "reads git credentials",
  ],
];

const DOWNLOADERS = new Set(["curl", "wget", "fetch", "http", "https", "aria2c"]);
const INTERPRETERS = new Set([
  "sh",
  "bash",
  "zsh",
  "dash",
  "ksh",
  "fish",
  "source",
  ".",
  "python",
  "python2",
  "python3",
  "node",
  "perl",
  "ruby",
  "php",
  "deno",
  "bun",
  "eval",
]);
const SHELLS = new Set(["sh", "bash", "zsh", "dash", "ksh", "fish"]);
const KEYWORDS = new Set(["do", "then", "else", "elif", "if", "while", "until", "!", "{", "time"]);
const WRAPPERS = new Set(["command", "builtin", "exec", "nohup", "time", "nice", "ionice", "stdbuf", "unbuffer"]);
const PRIVILEGE = new Set(["sudo", "su", "doas", "pkexec", "runuser", "chroot", "nsenter", "unshare"]);
const ALWAYS_BLOCKED: Record<string, string> = {
  mkfs: "formats a filesystem",
  fdisk: "partitions a disk",
  sfdisk: "partitions a disk",
  parted: "partitions a disk",
  wipefs: "wipes a filesystem",
  shred: "shreds files",
  mkswap: "formats swap",
  shutdown: "powers the machine off",
  reboot: "reboots the machine",
  halt: "halts the machine",
  poweroff: "powers the machine off",
  init: "changes the runlevel",
  killall: "kills processes by name",
  pkill: "kills processes by name",
  crontab: "installs scheduled jobs",
  insmod: "loads a kernel module",
  modprobe: "loads a kernel module",
  printenv: "prints the environment",
  compgen: "lists variables",
  iptables: "changes the firewall",
};
const PUBLISH = /^(npm|yarn|pnpm|cargo|gem|twine|poetry|docker|podman)$/;

/**
 * Checks one shell command.
 *
 * @example checkCommand("rm -rf /", { workspace: "/workspace" }) // { allowed: false, reason: "…" }
 */
export function checkCommand(command: string, options: SafetyOptions = {}, depth = 0): SafetyVerdict {
  if (depth > 4) return deny("command nesting too deep to analyse");
  for (const [pattern, reason] of TEXT_RULES) if (pattern.test(command)) return deny(reason);
  for (const file of options.protectedPaths ?? [])
    if (file && (command.includes(file) || command.includes(path.basename(file))))
      return deny("touches the runner's credential files");
  const parsed = parseShell(command);
  for (const body of parsed.nested) {
    const v = checkCommand(body, options, depth + 1);
    if (!v.allowed) return v;
  }
  const state = { cwdDepth: 0, leftWorkspace: false };
  for (const pipeline of parsed.pipelines) {
    const names = pipeline.map((c) => commandName(unwrap(c.argv)));
    const download = names.findIndex((n) => DOWNLOADERS.has(n));
    if (download >= 0 && names.slice(download + 1).some((n) => INTERPRETERS.has(n) || n === "xargs"))
      return deny("pipes a download into an interpreter (curl | sh)");
    for (const cmd of pipeline) {
      const v = checkSimple(cmd, options, state, depth, parsed.heredocs);
      if (!v.allowed) return v;
    }
  }
  if (/\b(curl|wget)\b/.test(command) && parsed.nested.some((b) => /\b(curl|wget)\b/.test(b))) {
    const outer = parsed.pipelines.flat().map((c) => commandName(unwrap(c.argv)));
    if (outer.some((n) => INTERPRETERS.has(n))) return deny('runs downloaded code (sh -c "$(curl …)")');
  }
  return ALLOW;
}

/** Drops leading assignments and wrappers: `FOO=1 nice -n5 env X=y rm …` → `rm …`. */
function unwrap(argv: string[]): string[] {
  let args = argv;
  for (let guard = 0; guard < 10 && args.length; guard++) {
    const first = args[0] as string;
    const name = path.basename(first);
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(first) || KEYWORDS.has(first)) args = args.slice(1);
    else if (WRAPPERS.has(name)) {
      args = args.slice(1);
      while (args[0] && (args[0].startsWith("-") || /^\d+$/.test(args[0]))) args = args.slice(1);
    } else if (name === "timeout") args = args.slice(1).filter((a, i) => !(i === 0 && /^[\d.]+[smhd]?$|^-/.test(a)));
    else if (name === "env") {
      let inner = args.slice(1);
      while (inner[0] && (inner[0].startsWith("-") || inner[0].includes("="))) inner = inner.slice(1);
      if (!inner.length) break; // bare `env`: prints the environment
      args = inner;
    } else break;
  }
  return args;
}

function commandName(argv: string[]): string {
  const first = argv[0] ?? "";
  const base = path.basename(first);
  return /^mkfs/.test(base) ? "mkfs" : base;
}

function checkSimple(
  cmd: SimpleCommand,
  options: SafetyOptions,
  state: { cwdDepth: number; leftWorkspace: boolean },
  depth: number,
  heredocs: string[],
): SafetyVerdict {
  for (const r of cmd.redirects) {
    if (r.op.startsWith(">") || r.op === "&>") {
      if (!isSafeWriteTarget(r.target, options, state)) return deny(`writes outside the workspace (${r.target})`);
    }
  }
  const argv = unwrap(cmd.argv);
  const name = commandName(argv);
  const args = argv.slice(1);
  if (!name) return ALLOW;
  if (PRIVILEGE.has(name)) return deny(`privilege escalation (${name})`);
  const fixed = ALWAYS_BLOCKED[name];
  if (fixed) return deny(fixed);
  if (name === "env" && args.every((a) => a.startsWith("-"))) return deny("prints the environment");
  if (
    (name === "export" || name === "declare" || name === "typeset") &&
    (args.length === 0 || (args.some((a) => /^-[a-z]*[px]/.test(a)) && !args.some((a) => a.includes("="))))
  )
    return deny("prints the environment");
  if (name === "set" && args.length === 0) return deny("prints the environment");
  if (SHELLS.has(name) || name === "eval") {
    const script = name === "eval" ? args.join(" ") : shellScriptArg(args);
    if (script !== undefined) return checkCommand(script, options, depth + 1);
    if (args.length === 0 || args.every((a) => a.startsWith("-") || a.startsWith("<<")))
      for (const body of heredocs) {
        const v = checkCommand(body, options, depth + 1);
        if (!v.allowed) return v;
      }
  }
  if (name === "xargs") {
    let at = 0;
    while (at < args.length && (args[at] as string).startsWith("-"))
      at += /^-[nIPLsdE]$/.test(args[at] as string) ? 2 : 1;
    const inner = args.slice(at);
    if (commandName(inner) === "rm" && inner.some((a) => /^-[a-zA-Z]*[rR]/.test(a)))
      return deny("recursive delete of paths read from input");
    return checkSimple({ argv: inner, redirects: [] }, options, state, depth, []);
  }
  if (name === "cd") return trackCd(args[0], options, state);
  if (name === "rm" || name === "rmdir" || name === "unlink") return checkRm(args, options, state);
  if (name === "find") return checkFind(args, options, state, depth);
  if (name === "dd" && args.some((a) => /^of=\/dev\/(?!null)/.test(a))) return deny("writes to a raw device");
  if (
    name === "chmod" ||
    name === "chown" ||
    name === "chgrp" ||
    name === "chattr" ||
    name === "mv" ||
    name === "ln" ||
    name === "truncate" ||
    name === "cp"
  ) {
    const targets = operands(args);
    const bad = (name === "cp" || name === "ln" ? targets.slice(-1) : targets).find(
      (t) => !isInsideWorkspace(t, options, state),
    );
    if (bad) return deny(`${name} outside the workspace (${bad})`);
  }
  if (name === "kill" && ["-1", "1"].includes(args.filter((a) => a !== "--").at(-1) ?? ""))
    return deny("kills every process");
  if (PUBLISH.test(name) && args[0] === "publish") return deny("publishes a package");
  if ((name === "docker" || name === "podman") && args[0] === "push") return deny("pushes an image");
  if ((name === "nc" || name === "ncat" || name === "netcat") && args.some((a) => /^-[a-z]*[ec]/.test(a)))
    return deny("reverse shell");
  if (name === "socat" && args.some((a) => /exec:|system:/i.test(a))) return deny("reverse shell");
  if (name === "git") return checkGit(args, options);
  return ALLOW;
}

/** The script of `sh -c 'script'` (the first operand after an option cluster containing c). */
function shellScriptArg(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (/^-[a-z]*c[a-z]*$/i.test(a)) return args[i + 1] ?? "";
    if (!a.startsWith("-")) return undefined;
  }
  return undefined;
}

function operands(args: string[]): string[] {
  const dash = args.indexOf("--");
  if (dash >= 0) return [...args.slice(0, dash).filter((a) => !a.startsWith("-")), ...args.slice(dash + 1)];
  return args.filter((a) => !a.startsWith("-"));
}

const TMP_PREFIXES = ["/tmp/", "/var/tmp/"];

/** Whether a path (as written in the command) stays inside the workspace or a temp dir. */
function isInsideWorkspace(
  target: string,
  options: SafetyOptions,
  state: { cwdDepth: number; leftWorkspace: boolean },
): boolean {
  if (target.startsWith("~") || /^\$\{?HOME\b/.test(target)) return false;
  if (target.startsWith("$") || target.includes("$(…)")) return false;
  if (target.startsWith("/")) {
    const norm = path.posix.normalize(target);
    if (TMP_PREFIXES.some((p) => norm.startsWith(p))) return true;
    return (
      !!options.workspace && (norm === options.workspace || norm.startsWith(`${options.workspace.replace(/\/$/, "")}/`))
    );
  }
  if (state.leftWorkspace) return false;
  const norm = path.posix.normalize(target);
  const ups = norm.split("/").filter((s) => s === "..").length;
  return !(norm === ".." || norm.startsWith("../")) || ups <= state.cwdDepth;
}

function isSafeWriteTarget(
  target: string,
  options: SafetyOptions,
  state: { cwdDepth: number; leftWorkspace: boolean },
): boolean {
  if (/^\/dev\/(null|stdout|stderr|fd\/[12])$/.test(target)) return true;
  if (/^\d+$|^-$/.test(target)) return true; // `>&2`
  return isInsideWorkspace(target, options, state);
}

function trackCd(
  target: string | undefined,
  options: SafetyOptions,
  state: { cwdDepth: number; leftWorkspace: boolean },
): SafetyVerdict {
  if (!target || target === "-") return ALLOW;
  if (target.startsWith("/") && !isInsideWorkspace(target, options, state)) {
    state.leftWorkspace = true; // reading elsewhere is fine; destructive relative paths then are not
    return ALLOW;
  }
  if (target.startsWith("~") || target.startsWith("$")) {
    state.leftWorkspace = true;
    return ALLOW;
  }
  if (target.startsWith("/")) {
    state.cwdDepth = options.workspace
      ? path.posix.relative(options.workspace, target).split("/").filter(Boolean).length
      : 0;
    return ALLOW;
  }
  for (const seg of path.posix.normalize(target).split("/")) {
    if (seg === "..") state.cwdDepth--;
    else if (seg && seg !== ".") state.cwdDepth++;
  }
  if (state.cwdDepth < 0) state.leftWorkspace = true;
  return ALLOW;
}

function checkRm(
  args: string[],
  options: SafetyOptions,
  state: { cwdDepth: number; leftWorkspace: boolean },
): SafetyVerdict {
  const recursive = args.some((a) => /^-[a-zA-Z]*[rR]/.test(a) || a === "--recursive");
  const targets = operands(args);
  for (const t of targets) {
    const norm = path.posix.normalize(t.replace(/\/+$/, "") || "/");
    if (norm === "/" || /^\/\*?$/.test(t) || t === "/*") return deny("deletes the root filesystem");
    if (!isInsideWorkspace(t, options, state)) return deny(`deletes outside the workspace (${t})`);
    if (/(^|\/)\.git(\/|$)/.test(norm)) return deny("deletes the git repository");
    if (recursive && (/^(\.|\*|\.\*|\.\/\*|\*\.\*)$/.test(norm) || t === "./" || norm === options.workspace))
      return deny("deletes the whole workspace");
  }
  return ALLOW;
}

function checkFind(
  args: string[],
  options: SafetyOptions,
  state: { cwdDepth: number; leftWorkspace: boolean },
  depth: number,
): SafetyVerdict {
  const destructive =
    args.some((a) => a === "-delete") ||
    args.some((a, i) => /^-(exec|execdir|ok)$/.test(a) && /(^|\/)(rm|shred|unlink|mv)$/.test(args[i + 1] ?? ""));
  const firstExpr = args.findIndex((a) => a.startsWith("-") || a === "(" || a === "!");
  const starts = firstExpr < 0 ? args : args.slice(0, firstExpr);
  if (destructive) {
    for (const s of starts.length ? starts : ["."]) {
      if (!isInsideWorkspace(s, options, state)) return deny(`deletes files outside the workspace (find ${s})`);
    }
    if (args.some((a) => a === ".git" || a.includes(".git/"))) return deny("deletes the git repository");
  }
  const execAt = args.findIndex((a) => /^-(exec|execdir)$/.test(a));
  if (execAt >= 0) {
    const end = args.findIndex((a, i) => i > execAt && (a === ";" || a === "+" || a === "\\;"));
    const inner = args.slice(execAt + 1, end < 0 ? undefined : end).filter((a) => a !== "{}");
    const v = checkCommand(inner.map(quote).join(" "), options, depth + 1);
    if (!v.allowed) return v;
  }
  return ALLOW;
}

function quote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`;
}

const GIT_GLOBAL_WITH_VALUE = new Set(["-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path"]);

function checkGit(args: string[], options: SafetyOptions): SafetyVerdict {
  let i = 0;
  while (i < args.length && (args[i] as string).startsWith("-")) {
    const a = args[i] as string;
    if (
      a === "-c" &&
      /^(core\.(sshCommand|hooksPath|fsmonitor|pager|editor)|credential|http\..*extraheader|alias\.)/i.test(
        args[i + 1] ?? "",
      )
    )
      return deny("overrides git's command hooks or credentials");
    i += GIT_GLOBAL_WITH_VALUE.has(a) ? 2 : 1;
  }
  const sub = args[i] ?? "";
  const rest = args.slice(i + 1);
  const has = (...flags: string[]) => rest.some((a) => flags.includes(a));
  const cluster = (letter: string) =>
    rest.some((a) => new RegExp(`^-[a-zA-Z]*${letter}`).test(a) && !a.startsWith("--"));
  switch (sub) {
    case "push":
      return checkPush(rest, options);
    case "reset":
      return has("--hard", "--merge", "--keep") ? deny("git reset --hard discards work") : ALLOW;
    case "clean":
      return cluster("f") || has("--force") ? deny("git clean deletes untracked files") : ALLOW;
    case "checkout":
    case "switch":
      return has("-f", "--force") || (rest.includes("--") && rest[rest.indexOf("--") + 1] === ".") || rest.includes(".")
        ? deny("discards all local changes")
        : ALLOW;
    case "restore":
      return rest.includes(".") && !has("--staged", "-S") ? deny("discards all local changes") : ALLOW;
    case "branch":
      return has("-D", "--delete") || (cluster("d") && has("-f", "--force")) ? deny("deletes a branch") : ALLOW;
    case "stash":
      return rest[0] === "clear" ? deny("drops all stashes") : ALLOW;
    case "filter-branch":
    case "filter-repo":
    case "replace":
      return deny("rewrites history");
    case "reflog":
      return rest[0] === "expire" || rest[0] === "delete" ? deny("expires the reflog") : ALLOW;
    case "update-ref":
      return has("-d") ? deny("deletes a ref") : ALLOW;
    case "gc":
      return rest.some((a) => a.startsWith("--prune")) ? deny("prunes unreachable objects") : ALLOW;
    case "remote":
      return ["add", "set-url", "rename", "remove", "rm"].includes(rest[0] ?? "")
        ? deny("changes the git remotes")
        : ALLOW;
    case "config":
      return rest.some((a) => /credential|extraheader|url\..*insteadof|core\.(hooksPath|sshCommand)/i.test(a))
        ? deny("changes git credentials or hooks")
        : ALLOW;
    case "send-pack":
    case "credential":
    case "credential-store":
    case "credential-cache":
      return deny("talks to git's credential or transport plumbing");
    default:
      return ALLOW;
  }
}

function checkPush(args: string[], options: SafetyOptions): SafetyVerdict {
  const flags = args.filter((a) => a.startsWith("-"));
  for (const f of flags) {
    if (/^(-f|--force.*|--mirror|--all|--tags|--delete|-d|--prune|--follow-tags|-[a-zA-Z]*f[a-zA-Z]*)$/.test(f))
      return deny(`git push ${f} is not allowed`);
    if (/^--(repo|receive-pack|exec)/.test(f)) return deny(`git push ${f} is not allowed`);
  }
  const positional = args.filter((a, i) => !a.startsWith("-") && !/^(-o|--push-option)$/.test(args[i - 1] ?? ""));
  const [remote, ...refspecs] = positional;
  if (remote !== undefined && remote !== "origin") return deny(`pushes to a remote other than origin (${remote})`);
  if (!refspecs.length && options.currentBranch) refspecs.push(options.currentBranch);
  for (const spec of refspecs) {
    if (spec.startsWith("+") || spec.startsWith(":")) return deny(`forced or deleting refspec (${spec})`);
    const dest = (spec.includes(":") ? spec.slice(spec.indexOf(":") + 1) : spec).replace(/^refs\/heads\//, "");
    if (dest === "HEAD") continue;
    const ok = options.branch ? dest === options.branch : dest.startsWith("agent/");
    if (!ok) return deny(`pushes to ${dest}; only the agent branch ${options.branch ?? "agent/…"} is allowed`);
  }
  return ALLOW;
}

import path from "node:path";
import { parseShell, type SimpleCommand, type Word } from "./shell-parse.ts";

/**
 * The Bash safety gate: decides whether a shell command may run. It reads the command with a real
 * shell grammar (shell-parse.ts) and fails closed: a line the grammar cannot read, a command word that
 * is not a literal, `eval`/`source` of generated text, decoded or downloaded text piped into an
 * interpreter, and inline interpreter code that reaches the network or the environment are refused.
 * Text rules (SQL, credential paths) apply where text is code or a path, not to every word, so an
 * ordinary `rg 'process.env' src` passes.
 *
 * It is defence in depth, not the boundary: in the runner the agent's commands also run as another
 * user in a sandbox without credentials. Used alone as a repository's Claude Code hook it only guards
 * against accidents (docs/security.md).
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

type Rule = [RegExp, string];
const first = (rules: Rule[], text: string): SafetyVerdict => {
  for (const [pattern, reason] of rules) if (pattern.test(text)) return deny(reason);
  return ALLOW;
};

/** Paths no command may touch: checked on every word, redirect target and piece of inline code. */
const PATH_RULES: Rule[] = [
  [/\/dev\/(tcp|udp)\//, "raw network socket (reverse shell)"],
  [
    /\/proc\/(self|thread-self|\d+|\*|\$\w+|\$\{\w+\}|[^/\s]*\*[^/\s]*)\//,
    "reads another process's memory or environment via /proc",
  ],
  [/\/proc\/\S*environ|\/environ\b/, "reads a process environment"],
  [/(^|[^\w.-])\.ssh\b|\bid_(rsa|dsa|ecdsa|ed25519)\b/, "reads SSH keys"],
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
];

/** Rules for text that is code: inline interpreter code, a database client's query, an interpreter's stdin. */
const CODE_RULES: Rule[] = [
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
  [
    /\b(rmtree|rmSync|rmdirSync|removeSync|remove_dir_all)\(\s*['"]?(\/|~|\$HOME|\.\.)/,
    "deletes outside the workspace",
  ],
];

const SECRET_NAME = /(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL|^AWS_|ASKPASS)/i;

/** Inline code given to an interpreter: the network, other programs and the environment are off limits. */
const INLINE_RULES: Rule[] = [
  [
    /\b(fetch|XMLHttpRequest|WebSocket|EventSource)\s*\(|\b(https?|http2|net|dgram|tls|dns)\.(request|get|connect|createConnection|Socket|lookup)\b/,
    "inline code that reaches the network",
  ],
  [/['"`](node:)?(https?|http2|net|dgram|tls|dns|undici)['"`]/, "inline code that reaches the network"],
  [
    /\b(socket|urllib\d?|requests|httpx|aiohttp|http\.client|ftplib|smtplib|telnetlib|paramiko)\b|IO::Socket|\bLWP\b|HTTP::Tiny|Net::HTTP|open-uri|TCPSocket|fsockopen|curl_init/,
    "inline code that reaches the network",
  ],
  [
    /child_process|\bsubprocess\b|\bos\.(system|popen|exec\w*|spawn\w*)\b|\bpty\.spawn\b|\b(system|exec|spawn|popen|passthru|shell_exec|proc_open)\s*\(|`[^`]*`|\bDeno\.(run|Command)\b|\bBun\.(spawn|\$)/,
    "inline code that runs other programs (out of the gate's sight)",
  ],
  [
    /\bprocess\.env\b(?!\s*\.\s*[A-Za-z_]|\s*\[\s*["'`])|\bos\.environ\b(?!\s*\[|\.get\b)|\bos\.environ\.(copy|items|keys|values)\b|%ENV\b|\bENV\.(to_h|to_a|each|keys|values|inspect)\b|\bSystem\.getenv\(\s*\)|\bgetenv\(\s*\)|\bDeno\.env\.toObject\b|\bBun\.env\b(?!\.\w)/,
    "inline code that dumps the environment",
  ],
];

/** Tasks that drop or reset a database, wherever they appear as arguments. */
const TASK_RULES: Rule[] = [
  [/\b(db:drop|db:reset|migrate\s+reset|migrate:fresh|migrate:reset|schema:drop)\b/i, "drops or resets a database"],
  [/\bmanage\.py\s+(flush|reset_db)\b/i, "empties the database"],
];

const DOWNLOADERS = new Set(["curl", "wget", "fetch", "http", "https", "aria2c", "nc", "ncat", "netcat", "socat"]);
const SHELLS = new Set(["sh", "bash", "zsh", "dash", "ksh", "fish", "ash", "mksh"]);
/** Interpreter → the options that take inline code. */
const INLINE: Record<string, RegExp> = {
  node: /^(-e|--eval|-p|--print)$/,
  nodejs: /^(-e|--eval|-p|--print)$/,
  python: /^-[A-Za-z]*c$/,
  python2: /^-[A-Za-z]*c$/,
  python3: /^-[A-Za-z]*c$/,
  perl: /^-[A-Za-z]*[eE]$/,
  ruby: /^-[A-Za-z]*e$/,
  php: /^-[A-Za-z]*r$/,
  bun: /^(-e|--eval|-p|--print)$/,
  deno: /^eval$/,
  lua: /^-e$/,
  Rscript: /^-e$/,
  osascript: /^-e$/,
};
const INTERPRETERS = new Set([...SHELLS, ...Object.keys(INLINE), "source", ".", "eval", "xargs"]);
const DB_CLIENTS = new Set([
  "psql",
  "mysql",
  "mariadb",
  "sqlite3",
  "sqlcmd",
  "cqlsh",
  "mongo",
  "mongosh",
  "redis-cli",
  "cypher-shell",
  "clickhouse-client",
  "duckdb",
]);
/** Commands that only read or print their arguments: task rules do not apply to what they mention. */
const READERS = new Set([
  "grep",
  "egrep",
  "rg",
  "ag",
  "ack",
  "cat",
  "less",
  "more",
  "head",
  "tail",
  "echo",
  "printf",
  "wc",
  "git",
  "ls",
  "find",
  "diff",
  "jq",
  "sed",
  "awk",
]);
const KEYWORDS = new Set(["do", "then", "else", "elif", "if", "while", "until", "!", "{", "time"]);
const WRAPPERS = new Set([
  "command",
  "builtin",
  "exec",
  "nohup",
  "time",
  "nice",
  "ionice",
  "stdbuf",
  "unbuffer",
  "setsid",
]);
const PRIVILEGE = new Set([
  "sudo",
  "su",
  "doas",
  "pkexec",
  "runuser",
  "chroot",
  "nsenter",
  "unshare",
  "capsh",
  "setpriv",
]);
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
  gdb: "attaches a debugger",
  strace: "traces another process",
  ltrace: "traces another process",
};
/** Variables that change how the programs a command starts behave. */
const RISKY_ASSIGNMENT =
  /^(GIT_CONFIG_\w*|GIT_ASKPASS|SSH_ASKPASS|GIT_SSH(_COMMAND)?|GIT_EXEC_PATH|GIT_DIR|LD_PRELOAD|LD_AUDIT|BASH_ENV|ENV|PROMPT_COMMAND)$/;
const PUBLISH = /^(npm|yarn|pnpm|cargo|gem|twine|poetry|docker|podman)$/;
/** A command word the gate can judge: plain text, as a person would type a program's name. */
const PLAIN_NAME = /^[A-Za-z0-9_./+@%:,~-]+$/;

interface WalkState {
  cwdDepth: number;
  leftWorkspace: boolean;
}

/**
 * Checks one shell command.
 *
 * @example await checkCommand("rm -rf /", { workspace: "/workspace" }) // { allowed: false, reason: "…" }
 */
export async function checkCommand(command: string, options: SafetyOptions = {}, depth = 0): Promise<SafetyVerdict> {
  if (depth > 4) return deny("command nesting too deep to analyse");
  if (/:\(\)\s*\{.*:\s*\|\s*:.*\}/.test(command)) return deny("fork bomb");
  for (const file of options.protectedPaths ?? [])
    if (file && (command.includes(file) || command.includes(path.basename(file))))
      return deny("touches the runner's credential files");
  const parsed = await parseShell(command);
  if (parsed.error) return deny("the shell grammar cannot read this command; write it more plainly");
  for (const e of parsed.expansions) {
    if (/^\$\{!/.test(e)) return deny("lists variables by name");
    const name = /^\$\{?#?([A-Za-z_][A-Za-z0-9_]*)/.exec(e)?.[1];
    if (name && SECRET_NAME.test(name)) return deny("references a secret variable");
  }
  const state: WalkState = { cwdDepth: 0, leftWorkspace: false };
  for (const pipeline of parsed.pipelines) {
    const v = await checkPipeline(pipeline, options, state, depth);
    if (!v.allowed) return v;
  }
  return ALLOW;
}

async function checkPipeline(
  pipeline: SimpleCommand[],
  options: SafetyOptions,
  state: WalkState,
  depth: number,
): Promise<SafetyVerdict> {
  for (const [i, cmd] of pipeline.entries()) {
    const v = await checkSimple(cmd, options, state, depth);
    if (!v.allowed) return v;
    if (i === 0) continue;
    const words = unwrap(cmd.words);
    const name = commandName(words);
    if (
      !INTERPRETERS.has(name) ||
      !readsCodeFromStdin(
        name,
        words.slice(1).map((w) => w.value),
      )
    )
      continue;
    for (const producer of pipeline.slice(0, i)) {
      const pw = unwrap(producer.words);
      const pn = commandName(pw);
      if (DOWNLOADERS.has(pn)) return deny("pipes downloaded text into an interpreter (curl | sh)");
      if (
        isDecoder(
          pn,
          pw.slice(1).map((w) => w.value),
        )
      )
        return deny(`pipes decoded text into an interpreter (${pn} | ${name})`);
      if (pn === "echo" || pn === "printf") {
        const args = pw.slice(1);
        if (args.some((w) => w.kind !== "literal")) return deny("pipes generated text into an interpreter");
        const text = args.map((w) => w.value).join(" ");
        const inner = SHELLS.has(name) ? await checkCommand(text, options, depth + 1) : checkCode(text);
        if (!inner.allowed) return inner;
      }
    }
  }
  return ALLOW;
}

function isDecoder(name: string, args: string[]): boolean {
  const decodeFlag = args.some((a) => /^(-d|-D|--decode|-r|--reverse|-dc|-cd)$|^-[a-zA-Z]*d[a-zA-Z]*$/.test(a));
  if (/^(base64|base32|basenc|xxd|gzip|bzip2|xz|zstd|openssl|gpg)$/.test(name)) return decodeFlag || name === "gpg";
  return /^(uudecode|gunzip|zcat|bzcat|xzcat|unxz|zstdcat|rev|tr|iconv|hexdump)$/.test(name);
}

/** Whether an interpreter invoked with these arguments reads its program from standard input. */
function readsCodeFromStdin(name: string, args: string[]): boolean {
  if (name === "xargs") return true;
  if (name === "source" || name === ".") return args.length === 0 || /^\/dev\/(stdin|fd\/0)$/.test(args[0] ?? "");
  if (name === "eval") return false;
  if (SHELLS.has(name) && args.some((a) => /^-[a-zA-Z]*s[a-zA-Z]*$/.test(a))) return true;
  const inline = INLINE[name];
  if (inline && args.some((a) => inline.test(a))) return false;
  const operand = args.find((a) => !a.startsWith("-") || a === "-");
  return operand === undefined || operand === "-" || /^\/dev\/(stdin|fd\/0)$/.test(operand);
}

/** Inline code or stdin text given to an interpreter (not a shell). */
function checkCode(code: string): SafetyVerdict {
  for (const rules of [PATH_RULES, CODE_RULES, INLINE_RULES]) {
    const v = first(rules, code);
    if (!v.allowed) return v;
  }
  const envKey =
    /\bprocess\.env\s*(?:\.\s*|\[\s*["'`])([A-Za-z_]\w*)|\bos\.environ\s*(?:\[\s*|\.get\(\s*)["']([A-Za-z_]\w*)|\bgetenv\(\s*["']([A-Za-z_]\w*)|\bENV\s*(?:\[\s*|\{\s*)["']?([A-Za-z_]\w*)/g;
  for (const m of code.matchAll(envKey)) {
    const name = m.slice(1).find(Boolean) ?? "";
    if (SECRET_NAME.test(name)) return deny("inline code that reads a secret variable");
  }
  return ALLOW;
}

/** Drops leading keywords and wrappers: `nice -n5 env X=y rm …` → `rm …`. */
function unwrap(words: Word[]): Word[] {
  let args = words;
  for (let guard = 0; guard < 10 && args.length; guard++) {
    const head = args[0] as Word;
    const name = path.basename(head.value);
    if (head.kind !== "literal") break;
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(head.value) || KEYWORDS.has(head.value)) args = args.slice(1);
    else if (WRAPPERS.has(name)) {
      args = args.slice(1);
      while (args[0] && (args[0].value.startsWith("-") || /^\d+$/.test(args[0].value))) args = args.slice(1);
    } else if (name === "timeout")
      args = args.slice(1).filter((a, i) => !(i === 0 && /^[\d.]+[smhd]?$|^-/.test(a.value)));
    else if (name === "env") {
      let inner = args.slice(1);
      while (inner[0] && (inner[0].value.startsWith("-") || inner[0].value.includes("="))) inner = inner.slice(1);
      if (!inner.length) break; // bare `env`: prints the environment
      args = inner;
    } else break;
  }
  return args;
}

function commandName(words: Word[]): string {
  const base = path.basename(words[0]?.value ?? "");
  return /^mkfs/.test(base) ? "mkfs" : base;
}

const literalWords = (argv: string[]): Word[] => argv.map((value) => ({ value, kind: "literal" }));

async function checkSimple(
  cmd: SimpleCommand,
  options: SafetyOptions,
  state: WalkState,
  depth: number,
): Promise<SafetyVerdict> {
  for (const a of cmd.assignments) {
    if (RISKY_ASSIGNMENT.test(a.name)) return deny(`sets ${a.name}, which changes how programs run`);
    if (
      a.name === "NODE_OPTIONS" &&
      /--(inspect|require|import|experimental-loader|loader)|(^|\s)-r\b/.test(a.value.value)
    )
      return deny("NODE_OPTIONS that loads code or opens the inspector");
    const v = first(PATH_RULES, a.value.value);
    if (!v.allowed) return v;
  }
  for (const r of cmd.redirects) {
    const v = first(PATH_RULES, r.target.value);
    if (!v.allowed) return v;
    if ((r.op.startsWith(">") || r.op === "&>" || r.op === "&>>") && !isSafeWriteTarget(r.target, options, state))
      return deny(`writes outside the workspace (${r.target.value})`);
  }
  for (const w of cmd.words) {
    const v = first(PATH_RULES, w.value);
    if (!v.allowed) return v;
  }
  if (!cmd.words.length) return ALLOW;
  const words = unwrap(cmd.words);
  const head = words[0];
  if (!head) return ALLOW;
  if (head.kind !== "literal" || !PLAIN_NAME.test(head.value))
    return deny(`the command word is not a literal (${head.value}); write the command's name plainly`);
  const name = commandName(words);
  const args = words.slice(1).map((w) => w.value);
  const argWords = words.slice(1);
  if (PRIVILEGE.has(name)) return deny(`privilege escalation (${name})`);
  const fixed = ALWAYS_BLOCKED[name];
  if (fixed) return deny(fixed);
  if (!READERS.has(name)) {
    const v = first(TASK_RULES, args.join(" "));
    if (!v.allowed) return v;
  }
  if (name === "env" && args.every((a) => a.startsWith("-"))) return deny("prints the environment");
  if (
    (name === "export" || name === "declare" || name === "typeset") &&
    (args.length === 0 || (args.some((a) => /^-[a-z]*[px]/.test(a)) && !args.some((a) => a.includes("="))))
  )
    return deny("prints the environment");
  if (name === "set" && args.length === 0) return deny("prints the environment");
  if (DB_CLIENTS.has(name)) {
    const v = first(CODE_RULES, [...args, cmd.stdin?.value ?? ""].join("\n"));
    if (!v.allowed) return v;
  }
  if (name === "eval") {
    if (argWords.some((w) => w.kind !== "literal")) return deny("eval of generated text");
    return checkCommand(args.join(" "), options, depth + 1);
  }
  if (name === "source" || name === ".") {
    const file = argWords[0];
    if (file?.kind !== "literal" || /^\/(dev|proc)\//.test(file.value)) return deny("source of generated text");
  }
  if (SHELLS.has(name)) {
    const at = args.findIndex((a) => /^-[a-z]*c[a-z]*$/i.test(a));
    if (at >= 0 && args.slice(0, at).every((a) => a.startsWith("-"))) {
      const script = argWords[at + 1];
      if (!script) return ALLOW;
      if (script.kind === "dynamic") return deny(`runs generated code (${name} -c with expanded text)`);
      return checkCommand(script.value, options, depth + 1);
    }
    const v = await checkStdinProgram(name, argWords, cmd, options, depth);
    if (!v.allowed) return v;
  }
  const inline = INLINE[name];
  if (inline) {
    const at = args.findIndex((a) => inline.test(a));
    const code = at >= 0 ? argWords[at + 1] : undefined;
    if (code) {
      if (code.kind === "dynamic") return deny(`runs generated code (${name} given expanded inline code)`);
      const v = checkCode(code.value);
      if (!v.allowed) return v;
    } else {
      const v = await checkStdinProgram(name, argWords, cmd, options, depth);
      if (!v.allowed) return v;
    }
  }
  if (name === "xargs") {
    let at = 0;
    while (at < args.length && (args[at] as string).startsWith("-"))
      at += /^-[nIPLsdE]$/.test(args[at] as string) ? 2 : 1;
    const inner = argWords.slice(at);
    if (commandName(inner) === "rm" && inner.some((a) => /^-[a-zA-Z]*[rR]/.test(a.value)))
      return deny("recursive delete of paths read from input");
    return checkSimple({ words: inner, assignments: [], redirects: [] }, options, state, depth);
  }
  if (name === "cd") return trackCd(argWords[0], options, state);
  if (name === "rm" || name === "rmdir" || name === "unlink") return checkRm(argWords, options, state);
  if (name === "find") return checkFind(argWords, options, state, depth);
  if (name === "dd" && args.some((a) => /^of=\/dev\/(?!null)/.test(a))) return deny("writes to a raw device");
  if (["chmod", "chown", "chgrp", "chattr", "mv", "ln", "truncate", "cp"].includes(name)) {
    const targets = operands(argWords);
    const bad = (name === "cp" || name === "ln" ? targets.slice(-1) : targets).find(
      (t) => !isInsideWorkspace(t, options, state),
    );
    if (bad) return deny(`${name} outside the workspace (${bad.value})`);
  }
  if (name === "kill" && ["-1", "1"].includes(args.filter((a) => a !== "--").at(-1) ?? ""))
    return deny("kills every process");
  if (PUBLISH.test(name) && args[0] === "publish") return deny("publishes a package");
  if ((name === "docker" || name === "podman") && args[0] === "push") return deny("pushes an image");
  if ((name === "nc" || name === "ncat" || name === "netcat") && args.some((a) => /^-[a-z]*[ec]/.test(a)))
    return deny("reverse shell");
  if (name === "socat" && args.some((a) => /exec:|system:/i.test(a))) return deny("reverse shell");
  if (name === "git") return checkGit(args, options);
  // A script named by a substitution (`bash <(curl …)`, `python3 $(…)`) is generated code.
  if (INTERPRETERS.has(name) && argWords.some((w) => w.kind === "dynamic" && /^[<>]\(|\$\(|`/.test(w.value)))
    return deny(`runs generated code (${name} given a substituted script)`);
  return ALLOW;
}

/** A shell or interpreter reading its program from a heredoc or here-string: judge that program. */
async function checkStdinProgram(
  name: string,
  args: Word[],
  cmd: SimpleCommand,
  options: SafetyOptions,
  depth: number,
): Promise<SafetyVerdict> {
  if (
    !cmd.stdin ||
    !readsCodeFromStdin(
      name,
      args.map((w) => w.value),
    )
  )
    return ALLOW;
  if (cmd.stdin.kind === "dynamic") return deny(`runs generated code (${name} fed expanded text)`);
  return SHELLS.has(name) ? checkCommand(cmd.stdin.value, options, depth + 1) : checkCode(cmd.stdin.value);
}

function operands(args: Word[]): Word[] {
  const dash = args.findIndex((a) => a.value === "--");
  if (dash >= 0) return [...args.slice(0, dash).filter((a) => !a.value.startsWith("-")), ...args.slice(dash + 1)];
  return args.filter((a) => !a.value.startsWith("-"));
}

const TMP_PREFIXES = ["/tmp/", "/var/tmp/"];

/** Whether a path (as written in the command) stays inside the workspace or a temp dir. */
function isInsideWorkspace(word: Word, options: SafetyOptions, state: WalkState): boolean {
  const target = word.value;
  if (word.kind === "dynamic" && /[$`]|^[<>]\(/.test(target)) return false;
  if (target.startsWith("~")) return false;
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

function isSafeWriteTarget(word: Word, options: SafetyOptions, state: WalkState): boolean {
  if (/^\/dev\/(null|stdout|stderr|fd\/[12])$/.test(word.value)) return true;
  if (/^\d+$|^-$/.test(word.value)) return true; // `>&2`
  return isInsideWorkspace(word, options, state);
}

function trackCd(word: Word | undefined, options: SafetyOptions, state: WalkState): SafetyVerdict {
  const target = word?.value;
  if (!word || !target || target === "-") return ALLOW;
  if (target.startsWith("/") && !isInsideWorkspace(word, options, state)) {
    state.leftWorkspace = true; // reading elsewhere is fine; destructive relative paths then are not
    return ALLOW;
  }
  if (target.startsWith("~") || word.kind === "dynamic") {
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

function checkRm(args: Word[], options: SafetyOptions, state: WalkState): SafetyVerdict {
  const recursive = args.some((a) => /^-[a-zA-Z]*[rR]/.test(a.value) || a.value === "--recursive");
  for (const w of operands(args)) {
    const t = w.value;
    const norm = path.posix.normalize(t.replace(/\/+$/, "") || "/");
    if (norm === "/" || /^\/\*?$/.test(t) || t === "/*") return deny("deletes the root filesystem");
    if (!isInsideWorkspace(w, options, state)) return deny(`deletes outside the workspace (${t})`);
    if (/(^|\/)\.git(\/|$)/.test(norm)) return deny("deletes the git repository");
    if (recursive && (/^(\.|\*|\.\*|\.\/\*|\*\.\*)$/.test(norm) || t === "./" || norm === options.workspace))
      return deny("deletes the whole workspace");
  }
  return ALLOW;
}

async function checkFind(
  args: Word[],
  options: SafetyOptions,
  state: WalkState,
  depth: number,
): Promise<SafetyVerdict> {
  const values = args.map((a) => a.value);
  const destructive =
    values.includes("-delete") ||
    values.some((a, i) => /^-(exec|execdir|ok)$/.test(a) && /(^|\/)(rm|shred|unlink|mv)$/.test(values[i + 1] ?? ""));
  const firstExpr = values.findIndex((a) => a.startsWith("-") || a === "(" || a === "!");
  const starts = firstExpr < 0 ? args : args.slice(0, firstExpr);
  if (destructive) {
    for (const s of starts.length ? starts : literalWords(["."])) {
      if (!isInsideWorkspace(s, options, state)) return deny(`deletes files outside the workspace (find ${s.value})`);
    }
    if (values.some((a) => a === ".git" || a.includes(".git/"))) return deny("deletes the git repository");
  }
  const execAt = values.findIndex((a) => /^-(exec|execdir|ok|okdir)$/.test(a));
  if (execAt >= 0) {
    const end = values.findIndex((a, i) => i > execAt && (a === ";" || a === "+" || a === "\\;"));
    const inner = args.slice(execAt + 1, end < 0 ? undefined : end).filter((a) => a.value !== "{}");
    const v = await checkSimple({ words: inner, assignments: [], redirects: [] }, options, { ...state }, depth + 1);
    if (!v.allowed) return v;
  }
  return ALLOW;
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

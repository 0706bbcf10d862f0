/**
 * Pattern extraction, the weekly job: reads every outcome record from the OUTCOMES stream, counts
 * them into learned rules (core/patterns.ts) and proposes `.claude/rules/patterns.md` and
 * `anti-patterns.md` as one pull request on the rules repository.
 *
 *   node --import tsx operator/patterns-job.ts     (in the image: node /opt/agentfactory/patterns-job.mjs)
 *
 * Unlike the seed, which opened a new PR (and branch) almost every week, the PR lives on one fixed
 * branch: a later run force-moves that branch to a fresh commit on the current base and updates the
 * open PR's title and body; it never opens a second one. Nothing is written when the rendered files
 * equal the base branch or the open PR already proposes them. The branch belongs to the job: edits
 * pushed to it by hand are replaced by the next run that has something new.
 *
 * Exit code 0: PR opened, updated, or nothing to do. 1: anything failed (logged).
 */

import { readFileSync } from "node:fs";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Octokit } from "@octokit/rest";
import { type Logger, pino } from "pino";
import { z } from "zod";
import { type NatsAuthOptions, natsAuthOptions } from "../core/nats-auth.ts";
import { OutcomeRecord } from "../core/outcome.ts";
import { extractPatterns, type Report, renderAntiPatternsMarkdown, renderPatternsMarkdown } from "../core/patterns.ts";
import { createRedactor, logRedaction, redactText } from "../core/redact.ts";
import { OUTCOMES_STREAM } from "../core/streams.ts";
import { Forge, type Permissions } from "./forge.ts";

/** The fixed head branch of the rules PR. */
export const PATTERNS_BRANCH = "chore/pattern-extraction";
/** What the job's installation token may do on the rules repository. */
export const PATTERNS_PERMISSIONS: Permissions = { metadata: "read", contents: "write", pull_requests: "write" };

const optional = z
  .string()
  .optional()
  .transform((v) => (v?.trim() ? v.trim() : undefined));

export const PatternsJobConfigSchema = z.object({
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  /** The `patterns` NATS user and password (core/nats-auth.ts); unset = connect without credentials. */
  NATS_USER: optional,
  NATS_PASSWORD: optional,
  /** CA bundle (PEM) the NATS server's certificate must chain to; set = TLS only. */
  NATS_TLS_CA_FILE: optional,
  /** `owner/name` of the repository that receives the rules PR. */
  RULES_REPO: z.string().regex(/^[\w.-]+\/[\w.-]+$/, "RULES_REPO must be owner/name"),
  RULES_BASE_BRANCH: z.string().min(1).default("main"),
  RULES_DIR: z
    .string()
    .default(".claude/rules")
    .transform((d) => d.replace(/^\/+|\/+$/g, "")),
  GITHUB_APP_ID: z.string().min(1, "GITHUB_APP_ID is required"),
  GITHUB_APP_PRIVATE_KEY: optional,
  GITHUB_APP_PRIVATE_KEY_FILE: optional,
  /** Without it, the App's installation on RULES_REPO is looked up. */
  GITHUB_INSTALLATION_ID: z.coerce.number().int().positive().optional(),
  GITHUB_API_URL: z.string().default("https://api.github.com"),
  GITHUB_SERVER_URL: z.string().default("https://github.com"),
  /** Only records of the last N days count; 0 = the whole stream. */
  WINDOW_DAYS: z.coerce.number().nonnegative().default(90),
  LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
});
export type PatternsJobConfig = z.infer<typeof PatternsJobConfigSchema> & { privateKey: string };

/** Reads and validates the environment; the private key comes inline or from a file (`\n` escapes allowed). */
export function loadPatternsJobConfig(env: Record<string, string | undefined> = process.env): PatternsJobConfig {
  const parsed = PatternsJobConfigSchema.parse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== "")));
  const key =
    parsed.GITHUB_APP_PRIVATE_KEY ??
    (parsed.GITHUB_APP_PRIVATE_KEY_FILE ? readFileSync(parsed.GITHUB_APP_PRIVATE_KEY_FILE, "utf8") : undefined);
  if (!key) throw new Error("GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE is required");
  return { ...parsed, privateKey: key.replace(/\\n/g, "\n") };
}

// --- Reading the stream -------------------------------------------------------------------------

/** The fields pattern extraction reads; enough to use a record whose other fields do not validate. */
const SEED_FIELDS = [
  "outcome",
  "pr_url",
  "pr_number",
  "branch",
  "risk_tier",
  "checks",
  "files_changed",
  "review_findings",
  "run_id",
  "timestamp",
  "model",
  "review_model",
  "provider",
  "cost_usd",
] as const;

/**
 * A message body as an outcome record, or undefined when it is not one. A record that fails the full
 * schema only in fields extraction does not read (e.g. tokens or stages in another shape) is kept,
 * reduced to the seed's fields.
 */
export function toOutcomeRecord(raw: unknown): OutcomeRecord | undefined {
  const full = OutcomeRecord.safeParse(raw);
  if (full.success) return full.data;
  if (!raw || typeof raw !== "object") return undefined;
  const seed = Object.fromEntries(SEED_FIELDS.filter((k) => k in raw).map((k) => [k, (raw as never)[k]]));
  const reduced = OutcomeRecord.safeParse(seed);
  return reduced.success ? reduced.data : undefined;
}

export interface ReadOutcomes {
  records: OutcomeRecord[];
  /** Messages that were not JSON or not an outcome record. */
  bad: number;
  /** False when the stream does not exist (nothing was ever recorded). */
  streamFound: boolean;
}

/**
 * Every record of OUTCOMES (since `since`), read with an ephemeral ordered consumer; writes nothing.
 * `auth`: `natsAuthOptions("patterns", env)`.
 */
export async function readOutcomes(natsUrl: string, since?: Date, auth: NatsAuthOptions = {}): Promise<ReadOutcomes> {
  const nc = await connect({ servers: natsUrl, ...auth, name: "agentfactory-patterns-job" });
  const out: ReadOutcomes = { records: [], bad: 0, streamFound: true };
  try {
    const js = jetstream(nc);
    try {
      await (await js.jetstreamManager()).streams.info(OUTCOMES_STREAM);
    } catch (err) {
      if (/not found/i.test((err as Error).message)) return { ...out, streamFound: false };
      throw err;
    }
    const consumer = await js.consumers.get(OUTCOMES_STREAM, {
      ...(since
        ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: since.toISOString() }
        : { deliver_policy: DeliverPolicy.All }),
    });
    let left = (await consumer.info(true)).num_pending;
    while (left > 0) {
      const batch = await consumer.fetch({ max_messages: Math.min(left, 256), expires: 5000 });
      let got = 0;
      for await (const m of batch) {
        got += 1;
        left = m.info.pending;
        let raw: unknown;
        try {
          raw = JSON.parse(m.string());
        } catch {
          out.bad += 1;
          continue;
        }
        const record = toOutcomeRecord(raw);
        if (record) out.records.push(record);
        else out.bad += 1;
      }
      if (got === 0) break;
    }
    return out;
  } finally {
    await nc.close();
  }
}

// --- Pure pieces: texts, redaction, the decision ------------------------------------------------

export { REDACTED } from "../core/redact.ts";

/**
 * Replaces token-shaped strings and the given secret values: the rules files are read by every later
 * run and by humans, so a credential a reviewer pasted into a finding must not end up there.
 */
export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  return createRedactor(secrets)(text);
}

/** The two rules files, path → content, secrets redacted. */
export function rulesFiles(report: Report, dir: string, secrets: readonly string[] = []): Record<string, string> {
  const at = (name: string) => (dir ? `${dir}/${name}` : name);
  return {
    [at("patterns.md")]: redactSecrets(renderPatternsMarkdown(report), secrets),
    [at("anti-patterns.md")]: redactSecrets(renderAntiPatternsMarkdown(report), secrets),
  };
}

/** The paths whose wanted content differs from `current` (undefined = the file does not exist). */
export function changedPaths(wanted: Record<string, string>, current: Record<string, string | undefined>): string[] {
  return Object.keys(wanted).filter((p) => current[p] !== wanted[p]);
}

export const commitMessage = (runs: number): string =>
  `chore: update learned patterns from ${runs} pipeline run${runs === 1 ? "" : "s"}`;

/** `Update learned patterns (YYYY-MM-DD)`, the date in UTC. */
export const prTitle = (now: Date): string => `Update learned patterns (${now.toISOString().slice(0, 10)})`;

export interface PrBodyInput {
  report: Report;
  windowDays: number;
  /** Messages that could not be read as outcome records. */
  bad: number;
  files: string[];
}

/** The PR description: what was counted, and what the reviewer must check before merging. */
export function prBody({ report, windowDays, bad, files }: PrBodyInput): string {
  const pct = `${Math.round(report.successRate * 100)}%`;
  const period = report.periodStart && report.periodEnd ? ` between ${report.periodStart} and ${report.periodEnd}` : "";
  const window = windowDays > 0 ? `the last ${windowDays} days of` : "all";
  const notes = [
    report.cancelled ? `${report.cancelled} cancelled run(s) left out` : "",
    report.duplicates ? `${report.duplicates} older record(s) of the same PR superseded` : "",
    bad ? `${bad} unreadable message(s) skipped` : "",
  ].filter(Boolean);
  return [
    "## Learned patterns: weekly update",
    "",
    `Counted from **${report.runs}** finished pipeline run${report.runs === 1 ? "" : "s"}${period} ` +
      `(${window} recorded outcomes): **${report.clean}** clean, **${report.failed}** failed, success rate **${pct}**.` +
      (notes.length ? ` ${notes.join("; ")}.` : ""),
    "",
    `Patterns need ${report.minCleanEvidence} clean PRs of evidence, anti-patterns ${report.minFailedEvidence} failed PRs. ` +
      "Every later run reads these files, so merging this changes how the agents work.",
    "",
    "Files:",
    ...files.map((f) => `- \`${f}\``),
    "",
    "### Before you merge",
    "",
    "- [ ] The patterns are accurate and worth following",
    "- [ ] The anti-patterns describe real, recurring problems rather than noise",
    "- [ ] Nothing confidential (credentials, customer data, internal hostnames) made it into the rules",
    "",
    `This pull request is maintained by the pattern-extraction job on the \`${PATTERNS_BRANCH}\` branch: ` +
      "each run with new evidence replaces its commit and updates this description. Edits belong in review " +
      "comments or in a follow-up after merging.",
    "",
  ].join("\n");
}

export type Decision =
  | { action: "noop"; reason: "no-outcomes" | "base-current" | "pr-current" }
  | { action: "update-pr"; pull: number }
  | { action: "open-pr" };

export interface DecideInput {
  runs: number;
  changedFromBase: string[];
  /** The open rules PR, with the paths its head differs from what we want. */
  openPull?: { number: number; changedFromHead: string[] };
}

/** What to do with the rendered files. Pure. */
export function decide({ runs, changedFromBase, openPull }: DecideInput): Decision {
  if (runs === 0) return { action: "noop", reason: "no-outcomes" };
  if (changedFromBase.length === 0) return { action: "noop", reason: "base-current" };
  if (openPull && openPull.changedFromHead.length === 0) return { action: "noop", reason: "pr-current" };
  if (openPull) return { action: "update-pr", pull: openPull.number };
  return { action: "open-pr" };
}

// --- The forge side ---------------------------------------------------------------------------------

async function readFiles(gh: Octokit, owner: string, repo: string, ref: string, paths: string[]) {
  const out: Record<string, string | undefined> = {};
  for (const path of paths) {
    try {
      const { data } = await gh.rest.repos.getContent({ owner, repo, path, ref });
      out[path] =
        !Array.isArray(data) && "content" in data ? Buffer.from(data.content, "base64").toString("utf8") : undefined;
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
      out[path] = undefined;
    }
  }
  return out;
}

export interface JobResult {
  decision: Decision;
  runs: number;
  bad: number;
  pull?: { number: number; url: string; headSha: string };
}

/** One run of the job against real NATS and GitHub. */
export async function runPatternsJob(
  config: PatternsJobConfig,
  log: Logger,
  now: Date = new Date(),
): Promise<JobResult> {
  const since = config.WINDOW_DAYS > 0 ? new Date(now.getTime() - config.WINDOW_DAYS * 86_400_000) : undefined;
  const read = await readOutcomes(config.NATS_URL, since, natsAuthOptions("patterns", config));
  if (!read.streamFound) log.warn({ stream: OUTCOMES_STREAM }, "outcome stream not found: nothing recorded yet");
  if (read.bad) log.warn({ bad: read.bad }, "skipped messages that are not outcome records");
  const report = extractPatterns(read.records, { now });
  log.info(
    { records: read.records.length, runs: report.runs, successRate: report.successRate, since: since?.toISOString() },
    "outcomes counted",
  );
  const base = { runs: report.runs, bad: read.bad };
  if (report.runs === 0) {
    log.info("no finished runs to learn from: no pull request");
    return { ...base, decision: { action: "noop", reason: "no-outcomes" } };
  }

  const forge = new Forge({
    appId: config.GITHUB_APP_ID,
    privateKey: config.privateKey,
    apiUrl: config.GITHUB_API_URL,
  });
  const token = await forge.mintToken(config.RULES_REPO, PATTERNS_PERMISSIONS, config.GITHUB_INSTALLATION_ID);
  const gh = new Octokit({
    baseUrl: config.GITHUB_API_URL,
    auth: token,
    userAgent: "agentfactory-patterns-job",
    log: { debug() {}, info() {}, warn() {}, error() {} },
  });
  const [owner, repo] = config.RULES_REPO.split("/") as [string, string];
  const files = rulesFiles(report, config.RULES_DIR, [config.privateKey, token]);
  const paths = Object.keys(files);

  const baseRef = await gh.rest.git.getRef({ owner, repo, ref: `heads/${config.RULES_BASE_BRANCH}` });
  const baseSha = baseRef.data.object.sha;
  const changedFromBase = changedPaths(files, await readFiles(gh, owner, repo, baseSha, paths));
  const { data: open } = await gh.rest.pulls.list({
    owner,
    repo,
    state: "open",
    head: `${owner}:${PATTERNS_BRANCH}`,
    base: config.RULES_BASE_BRANCH,
    per_page: 10,
  });
  const openPull = open[0];
  const decision = decide({
    runs: report.runs,
    changedFromBase,
    ...(openPull
      ? {
          openPull: {
            number: openPull.number,
            changedFromHead: changedPaths(files, await readFiles(gh, owner, repo, openPull.head.sha, paths)),
          },
        }
      : {}),
  });
  if (decision.action === "noop") {
    const pull = openPull ? { number: openPull.number, url: openPull.html_url, headSha: openPull.head.sha } : undefined;
    if (decision.reason === "base-current")
      log.info({ base: config.RULES_BASE_BRANCH, openPull: pull?.number }, "rules on the base branch are current");
    else log.info({ pull: pull?.number, url: pull?.url }, "the open rules pull request is current");
    return { ...base, decision, ...(pull ? { pull } : {}) };
  }

  // A fresh commit on the current base: the PR always shows exactly the new rules against main.
  const baseCommit = await gh.rest.git.getCommit({ owner, repo, commit_sha: baseSha });
  const tree = await gh.rest.git.createTree({
    owner,
    repo,
    base_tree: baseCommit.data.tree.sha,
    tree: paths.map((path) => ({ path, mode: "100644" as const, type: "blob" as const, content: files[path] })),
  });
  const commit = await gh.rest.git.createCommit({
    owner,
    repo,
    message: commitMessage(report.runs),
    tree: tree.data.sha,
    parents: [baseSha],
  });
  const headSha = commit.data.sha;
  try {
    await gh.rest.git.updateRef({ owner, repo, ref: `heads/${PATTERNS_BRANCH}`, sha: headSha, force: true });
  } catch (err) {
    if ((err as { status?: number }).status !== 422) throw err;
    await gh.rest.git.createRef({ owner, repo, ref: `refs/heads/${PATTERNS_BRANCH}`, sha: headSha });
  }
  const title = prTitle(now);
  const body = redactSecrets(prBody({ report, windowDays: config.WINDOW_DAYS, bad: read.bad, files: paths }), [
    config.privateKey,
    token,
  ]);
  if (decision.action === "update-pr") {
    const { data } = await gh.rest.pulls.update({ owner, repo, pull_number: decision.pull, title, body });
    log.info(
      { pull: data.number, url: data.html_url, headSha, changed: changedFromBase },
      "rules pull request updated",
    );
    return { ...base, decision, pull: { number: data.number, url: data.html_url, headSha } };
  }
  const { data } = await gh.rest.pulls.create({
    owner,
    repo,
    head: PATTERNS_BRANCH,
    base: config.RULES_BASE_BRANCH,
    title,
    body,
  });
  log.info({ pull: data.number, url: data.html_url, headSha, changed: changedFromBase }, "rules pull request opened");
  return { ...base, decision, pull: { number: data.number, url: data.html_url, headSha } };
}

async function main(): Promise<number> {
  const log = pino({
    level: process.env.LOG_LEVEL ?? "info",
    base: { component: "patterns-job" },
    ...logRedaction(redactText),
  });
  try {
    const config = loadPatternsJobConfig();
    log.level = config.LOG_LEVEL;
    const result = await runPatternsJob(config, log);
    log.info({ decision: result.decision, runs: result.runs, pull: result.pull?.number }, "pattern extraction done");
    return 0;
  } catch (err) {
    const e = err as Error & { status?: number };
    log.error({ err: { message: e.message, status: e.status } }, "pattern extraction failed");
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then((code) => {
    process.exitCode = code;
  });
}

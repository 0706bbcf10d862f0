import { CHECK_NAMES, type OutcomeRecord } from "./outcome.ts";

/**
 * Pattern extraction: counts over the outcome log, no model involved. What recurs in clean pull
 * requests becomes a pattern, what recurs in failed ones an anti-pattern; both are rendered into
 * `.claude/rules/patterns.md` and `anti-patterns.md`, which later runs read and humans review.
 *
 * Counting is per pull request: a PR logged several times counts once, with its latest record.
 * Cancelled runs are a human's decision, not evidence either way, and are left out of rates and rules.
 */

export interface PatternOptions {
  /** Stamps the report; the clock is the caller's. */
  now: Date;
  /** Clean PRs needed for a pattern (the seed's 3). */
  minCleanEvidence?: number;
  /** Failed PRs needed for an anti-pattern (the seed's 2). */
  minFailedEvidence?: number;
  /** Items per rendered section (the seed's 5). */
  top?: number;
}

export type FindingKind = "file" | "directory" | "check" | "review-finding";

export interface Finding {
  kind: FindingKind;
  /** File path, directory ("." for the repository root), check name, or finding text. */
  subject: string;
  /** Distinct PRs (runs) with this evidence. */
  count: number;
  /** Their PR numbers, ascending (runs without a PR have none). */
  prs: number[];
  /** count / PRs in the class (clean or failed), two decimals. */
  confidence: number;
  /** The rule as rendered, without the PR list. */
  description: string;
}

export interface Rate {
  key: string;
  runs: number;
  clean: number;
  rate: number;
}

export interface Report {
  generatedAt: string;
  /** Oldest and newest timestamps among the records used; null without records. */
  periodStart: string | null;
  periodEnd: string | null;
  /** Finished, not cancelled runs after de-duplication: clean + failed. */
  runs: number;
  clean: number;
  failed: number;
  cancelled: number;
  /** Records dropped because a later record of the same PR exists. */
  duplicates: number;
  successRate: number;
  /** low, medium, high, unknown: those present. */
  successRateByTier: Rate[];
  /** Best first; records without a model are left out. */
  successRateByModel: Rate[];
  /** Average cost over records that logged one, clean first. */
  costByOutcome: { outcome: string; runs: number; averageUsd: number }[];
  patterns: Finding[];
  antiPatterns: Finding[];
  /** Check → failed PRs. */
  commonFailures: { check: string; count: number }[];
  /** The 10 files seen in most failed PRs. */
  fileHotspots: { file: string; count: number }[];
  /** The thresholds used, for the texts. */
  minCleanEvidence: number;
  minFailedEvidence: number;
  top: number;
}

const TIERS = ["low", "medium", "high", "unknown"];
const HOTSPOTS = 10;

/**
 * Counts the outcome log into a report.
 *
 * @example
 * const report = extractPatterns(parseJsonl(text).records, { now: new Date() });
 * await writeFile(".claude/rules/patterns.md", renderPatternsMarkdown(report));
 */
export function extractPatterns(records: readonly OutcomeRecord[], options: PatternOptions): Report {
  const { now, minCleanEvidence = 3, minFailedEvidence = 2, top = 5 } = options;
  const latest = latestPerPr(records);
  const decided = latest.filter((r) => r.outcome !== "cancelled");
  const clean = decided.filter(isClean);
  const failed = decided.filter((r) => !isClean(r));
  const times = latest.map((r) => r.timestamp).filter((t) => Number.isFinite(time(t)));

  const patterns = rank(
    [
      ...evidence(clean, (r) => r.files_changed, minCleanEvidence).map(([file, rs]) =>
        finding(
          "file",
          file,
          rs,
          clean.length,
          `File \`${file}\` was changed in ${rs.length} clean PRs without trouble.`,
        ),
      ),
      ...evidence(clean, (r) => r.files_changed.map(parentDir), minCleanEvidence).map(([dir, rs]) =>
        finding(
          "directory",
          dir,
          rs,
          clean.length,
          `${describeDir(dir)} went through review cleanly in ${rs.length} PRs.`,
        ),
      ),
    ],
    ["file", "directory"],
  );

  const failedChecks = (r: OutcomeRecord) => CHECK_NAMES.filter((c) => r.checks[c] === "failure");
  const findings = new Map<string, string>();
  const antiPatterns = rank(
    [
      ...evidence(failed, (r) => r.review_findings.map((f) => rememberFinding(f, findings)), minFailedEvidence).map(
        ([key, rs]) =>
          finding(
            "review-finding",
            findings.get(key) ?? key,
            rs,
            failed.length,
            `Review raised this in ${rs.length} failed PRs: “${findings.get(key) ?? key}”`,
          ),
      ),
      ...evidence(failed, failedChecks, minFailedEvidence).map(([check, rs]) => {
        const files = counted(rs, (r) => r.files_changed)
          .slice(0, 3)
          .map(([f]) => `\`${f}\``);
        const involved = files.length ? ` Files most often involved: ${files.join(", ")}.` : "";
        return finding(
          "check",
          check,
          rs,
          failed.length,
          `The \`${check}\` check failed in ${rs.length} PRs.${involved}`,
        );
      }),
      ...evidence(failed, (r) => r.files_changed, minFailedEvidence).map(([file, rs]) =>
        finding(
          "file",
          file,
          rs,
          failed.length,
          `File \`${file}\` was part of ${rs.length} failed PRs; change it with care.`,
        ),
      ),
    ],
    ["review-finding", "check", "file"],
  );

  return {
    generatedAt: now.toISOString(),
    periodStart: times[0] ?? null,
    periodEnd: times.at(-1) ?? null,
    runs: decided.length,
    clean: clean.length,
    failed: failed.length,
    cancelled: latest.length - decided.length,
    duplicates: records.length - latest.length,
    successRate: ratio(clean.length, decided.length),
    successRateByTier: rates(decided, (r) => r.risk_tier).sort((a, b) => TIERS.indexOf(a.key) - TIERS.indexOf(b.key)),
    successRateByModel: rates(
      decided.filter((r) => r.model),
      (r) => r.model ?? "",
    ).sort((a, b) => b.rate - a.rate || b.runs - a.runs || compare(a.key, b.key)),
    costByOutcome: costByOutcome(latest),
    patterns,
    antiPatterns,
    commonFailures: counted(failed, failedChecks).map(([check, rs]) => ({ check, count: rs.length })),
    fileHotspots: counted(failed, (r) => r.files_changed)
      .slice(0, HOTSPOTS)
      .map(([file, rs]) => ({ file, count: rs.length })),
    minCleanEvidence,
    minFailedEvidence,
    top,
  };
}

const NO_OUTCOMES = "No agent outcomes recorded yet.";

/** `.claude/rules/patterns.md`. */
export function renderPatternsMarkdown(report: Report): string {
  const lines = ["# Agent Patterns — What Works Well", ""];
  if (report.runs === 0) return document([...lines, NO_OUTCOMES]);
  lines.push(`Based on ${runs(report.runs)}. Success rate: ${percent(report.successRate)}.`, "");
  const tiers = report.successRateByTier.filter((t) => t.key !== "unknown");
  if (tiers.length) {
    for (const t of tiers) lines.push(`- **${t.key}** risk: ${percent(t.rate)} success rate (${runs(t.runs)})`);
    lines.push("");
  }
  if (report.patterns.length) for (const p of report.patterns.slice(0, report.top)) lines.push(item(p));
  else lines.push(`No pattern has reached ${report.minCleanEvidence} clean PRs yet.`);
  if (report.costByOutcome.length) {
    lines.push("", "## Cost per Outcome", "");
    for (const c of report.costByOutcome) lines.push(`- ${c.outcome}: $${c.averageUsd.toFixed(4)} (${runs(c.runs)})`);
  }
  if (report.successRateByModel.length) {
    lines.push("", "## Model Performance", "");
    for (const m of report.successRateByModel)
      lines.push(`- \`${m.key}\`: ${percent(m.rate)} success rate (${runs(m.runs)})`);
  }
  return document(lines);
}

/** `.claude/rules/anti-patterns.md`. */
export function renderAntiPatternsMarkdown(report: Report): string {
  const lines = ["# Agent Anti-Patterns — Watch Out For", ""];
  if (report.runs === 0) return document([...lines, NO_OUTCOMES]);
  if (report.antiPatterns.length) for (const p of report.antiPatterns.slice(0, report.top)) lines.push(item(p));
  else lines.push(`Nothing has gone wrong in ${report.minFailedEvidence} or more PRs yet.`);
  if (report.commonFailures.length) {
    lines.push("", "## Common Failure Checks", "");
    for (const c of report.commonFailures.slice(0, report.top))
      lines.push(`- \`${c.check}\`: failed in ${c.count} PR${c.count === 1 ? "" : "s"}`);
  }
  if (report.fileHotspots.length) {
    lines.push("", "## File Hotspots", "");
    for (const h of report.fileHotspots.slice(0, report.top))
      lines.push(
        `- \`${h.file}\`: in ${h.count} failed PR${h.count === 1 ? "" : "s"}; run its tests early when you touch it`,
      );
  }
  return document(lines);
}

/** `(PRs: #1, #2, #3 +K more)`, or nothing for evidence from runs without a PR. */
export function prList(prs: readonly number[]): string {
  const sorted = [...new Set(prs)].filter((n) => n > 0).sort((a, b) => a - b);
  if (!sorted.length) return "";
  const shown = sorted.slice(0, 3).map((n) => `#${n}`);
  const more = sorted.length > 3 ? ` +${sorted.length - 3} more` : "";
  return ` (PRs: ${shown.join(", ")}${more})`;
}

/**
 * One record per pull request, the latest by timestamp (later lines win ties). PRs are told apart
 * by repository and number; a run without a PR stands for itself.
 */
export function latestPerPr(records: readonly OutcomeRecord[]): OutcomeRecord[] {
  const byKey = new Map<string, { record: OutcomeRecord; at: number }>();
  for (const record of records) {
    const at = time(record.timestamp);
    const key = prKey(record);
    const seen = byKey.get(key);
    if (!seen || at >= seen.at) {
      byKey.set(key, { record, at });
    }
  }
  // Oldest first (stable), so that a finding's newest wording is the one remembered.
  return [...byKey.values()].sort((a, b) => (a.at === b.at ? 0 : a.at < b.at ? -1 : 1)).map((v) => v.record);
}

/**
 * The seed's finding markers, only as a finding's prefix and only as written (`BLOCKING:`,
 * `[SPEC-AUDIT] BLOCKING:`, `[SPEC-AUDIT] MISSING:`), optionally after a list bullet: the English
 * word "Missing" opening a finding is part of the finding.
 */
const FINDING_MARKER = /^\s*(?:[-*]\s+)?(?:\[SPEC-AUDIT\] (?:BLOCKING|MISSING)|BLOCKING):/;

/**
 * A finding's text made safe to show to later runs: the seed's marker prefix removed, one line, no
 * markup that could break out of the quote, at most 160 characters.
 */
export function cleanFinding(text: string): string {
  const flat = text
    .replace(FINDING_MARKER, " ")
    .replace(/[\p{Cc}\p{Cf}`*<>[\]“”]/gu, " ")
    .replace(/\s+/g, " ")
    .trim()
    .replace(/^[-:–—\s]+/, "");
  return flat.length > 160 ? `${flat.slice(0, 159).trimEnd()}…` : flat;
}

/** Grouping key of a finding: case, line numbers and trailing punctuation do not matter. */
function findingKey(text: string): string {
  return cleanFinding(text)
    .toLowerCase()
    .replace(/:\d+(-\d+)?\b/g, "")
    .replace(/[.!;,\s]+$/, "");
}

function rememberFinding(text: string, display: Map<string, string>): string {
  const key = findingKey(text);
  if (key) display.set(key, cleanFinding(text)); // later (newer) wording wins
  return key;
}

function isClean(r: OutcomeRecord): boolean {
  return r.outcome === "clean";
}

function prKey(r: OutcomeRecord): string {
  if (r.pr_number <= 0) return `run:${r.run_id}`;
  const repo = /([^/]+\/[^/]+)\/pull\/\d+/.exec(r.pr_url)?.[1] ?? "";
  return `${repo}#${r.pr_number}`;
}

/** Keys of each record (counted once per record) → the records having them, most first, then by key. */
function counted(records: readonly OutcomeRecord[], keys: (r: OutcomeRecord) => readonly string[]) {
  const map = new Map<string, OutcomeRecord[]>();
  for (const r of records)
    for (const k of new Set(keys(r))) {
      if (!k) continue;
      const list = map.get(k) ?? [];
      list.push(r);
      map.set(k, list);
    }
  return [...map.entries()].sort((a, b) => b[1].length - a[1].length || compare(a[0], b[0]));
}

function evidence(records: readonly OutcomeRecord[], keys: (r: OutcomeRecord) => readonly string[], min: number) {
  return counted(records, keys).filter(([, rs]) => rs.length >= min);
}

function finding(
  kind: FindingKind,
  subject: string,
  records: readonly OutcomeRecord[],
  classSize: number,
  description: string,
): Finding {
  return {
    kind,
    subject,
    count: records.length,
    prs: [...new Set(records.map((r) => r.pr_number).filter((n) => n > 0))].sort((a, b) => a - b),
    confidence: Math.round(Math.min(records.length / Math.max(classSize, 1), 1) * 100) / 100,
    description,
  };
}

/** Most evidence first; on ties, by kind in the given order, then by subject. */
function rank(findings: Finding[], kinds: FindingKind[]): Finding[] {
  return findings.sort(
    (a, b) => b.count - a.count || kinds.indexOf(a.kind) - kinds.indexOf(b.kind) || compare(a.subject, b.subject),
  );
}

function rates(records: readonly OutcomeRecord[], key: (r: OutcomeRecord) => string): Rate[] {
  const map = new Map<string, { runs: number; clean: number }>();
  for (const r of records) {
    const k = key(r);
    const entry = map.get(k) ?? { runs: 0, clean: 0 };
    entry.runs += 1;
    if (isClean(r)) entry.clean += 1;
    map.set(k, entry);
  }
  return [...map.entries()].map(([k, v]) => ({ key: k, runs: v.runs, clean: v.clean, rate: ratio(v.clean, v.runs) }));
}

function costByOutcome(records: readonly OutcomeRecord[]): Report["costByOutcome"] {
  const map = new Map<string, number[]>();
  for (const r of records) {
    if (!r.cost_usd) continue;
    map.set(r.outcome, [...(map.get(r.outcome) ?? []), r.cost_usd]);
  }
  return [...map.entries()]
    .map(([outcome, costs]) => ({
      outcome,
      runs: costs.length,
      averageUsd: Math.round((costs.reduce((a, b) => a + b, 0) / costs.length) * 1e6) / 1e6,
    }))
    .sort((a, b) => Number(b.outcome === "clean") - Number(a.outcome === "clean") || compare(a.outcome, b.outcome));
}

function parentDir(path: string): string {
  const cut = path.replace(/\/+$/, "").lastIndexOf("/");
  return cut <= 0 ? "." : path.slice(0, cut);
}

function describeDir(dir: string): string {
  return dir === "." ? "The repository's top-level files" : `Directory \`${dir}/\``;
}

function item(f: Finding): string {
  return `- ${f.description}${prList(f.prs)}`;
}

function document(lines: string[]): string {
  return `${lines.join("\n")}\n`;
}

const percent = (rate: number) => `${Math.round(rate * 100)}%`;
const runs = (n: number) => `${n} run${n === 1 ? "" : "s"}`;
const ratio = (a: number, b: number) => (b === 0 ? 0 : Math.round((a / b) * 10_000) / 10_000);
const time = (iso: string) => {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? Number.NEGATIVE_INFINITY : t;
};
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

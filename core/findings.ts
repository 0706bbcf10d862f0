import { z } from "zod";

/**
 * Review findings as the runner's review stage records them: hidden JSON embedded in its PR review
 * body, read back exactly (never parsed from prose) by remediation and by the operator's outcome record.
 */

const text = z.string().trim().min(1);

export const Finding = z.object({
  severity: z.enum(["critical", "high", "medium", "low", "info"]),
  file: z.string().optional().describe("Path relative to the repository root"),
  line: z.number().int().positive().optional().describe("Line in the new version of the file"),
  title: text,
  detail: text,
  blocking: z.boolean(),
});
export type Finding = z.infer<typeof Finding>;

/** A finding with where it came from (the check that produced it). */
export type SourcedFinding = Finding & { source: string };

const FINDINGS_MARK = "agentfactory:findings";
const VERDICT_MARK = "agentfactory:verdict";
/** What every AgentFactory stage marker in a PR review or comment starts with. */
export const STAGE_MARKER_PREFIX = "<!-- agentfactory:run=";

/** Hidden marker identifying what one stage attempt posted, so a re-run finds it and the operator checks it. */
export function stageMarker(run: string, stage: string, attempt: number, kind = "comment"): string {
  return `<!-- agentfactory:run=${run} stage=${stage} attempt=${attempt} kind=${kind} -->`;
}

/** A review's verdict beside its findings: the tier the review judged by and the checks that ran. */
export const Verdict = z.object({
  riskTier: z.enum(["low", "medium", "high"]),
  checks: z.record(z.string(), z.enum(["success", "failure", "skipped"])),
});
export type Verdict = z.infer<typeof Verdict>;

/** Embeds the review's verdict as hidden JSON, next to {@link embedFindings}. */
export function embedVerdict(verdict: Verdict): string {
  return `<!-- ${VERDICT_MARK} ${Buffer.from(JSON.stringify(verdict)).toString("base64")} -->`;
}

/** Reads a verdict embedded by {@link embedVerdict}; undefined when absent or malformed. */
export function extractVerdict(body: string): Verdict | undefined {
  const m = new RegExp(`<!-- ${VERDICT_MARK} ([A-Za-z0-9+/=]+) -->`).exec(body);
  if (!m) return undefined;
  try {
    const parsed = Verdict.safeParse(JSON.parse(Buffer.from(m[1] as string, "base64").toString("utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Embeds findings in a review body as hidden JSON, so remediation reads them exactly (no text parsing). */
export function embedFindings(findings: SourcedFinding[]): string {
  const payload = Buffer.from(JSON.stringify(findings)).toString("base64");
  return `<!-- ${FINDINGS_MARK} ${payload} -->`;
}

/** Reads findings embedded by {@link embedFindings}; undefined when the body has none or they are malformed. */
export function extractFindings(body: string): SourcedFinding[] | undefined {
  const m = new RegExp(`<!-- ${FINDINGS_MARK} ([A-Za-z0-9+/=]+) -->`).exec(body);
  if (!m) return undefined;
  try {
    const parsed = z
      .array(Finding.extend({ source: z.string() }))
      .safeParse(JSON.parse(Buffer.from(m[1] as string, "base64").toString("utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** A PR review as far as {@link latestReviewFindings} needs it. */
export interface ReviewLike {
  body: string;
  /**
   * Posted by the App itself (its login, `<slug>[bot]`, exactly): not by a person pasting a marker,
   * nor by any other bot or App on the repository.
   */
  byApp: boolean;
}

/** Whether `login` is the App's own login; never true when the App's login is unknown. */
export const isAppLogin = (login: string | null | undefined, appLogin: string | undefined): boolean =>
  !!appLogin && !!login && login === appLogin;

/**
 * The findings of the latest AgentFactory review among `reviews` (oldest first, as GitHub lists
 * them): the newest review by the App carrying a stage marker and embedded findings; [] when there is none.
 */
export function latestReviewFindings(reviews: readonly ReviewLike[]): SourcedFinding[] {
  for (const r of [...reviews].reverse()) {
    if (!r.byApp || !r.body.includes(STAGE_MARKER_PREFIX)) continue;
    const found = extractFindings(r.body);
    if (found) return found;
  }
  return [];
}

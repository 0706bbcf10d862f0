import { z } from "zod";

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

export const FindingsReport = z.object({
  summary: text.describe("One or two sentences: the overall verdict"),
  findings: z.array(Finding),
});
export type FindingsReport = z.infer<typeof FindingsReport>;

/** A finding with where it came from (the check that produced it). */
export type SourcedFinding = Finding & { source: string };

const FINDINGS_MARK = "agentfactory:findings";

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

const SEVERITY_ICON: Record<Finding["severity"], string> = {
  critical: "🟥",
  high: "🟧",
  medium: "🟨",
  low: "🟦",
  info: "⬜",
};

/** One line per finding, for review bodies and remediation answers. */
export function findingLine(f: SourcedFinding, index: number): string {
  const where = f.file ? ` \`${f.file}${f.line ? `:${f.line}` : ""}\`` : "";
  return `${index + 1}. ${SEVERITY_ICON[f.severity]} ${f.blocking ? "**BLOCKING** " : ""}[${f.source}]${where} **${f.title}**: ${f.detail}`;
}

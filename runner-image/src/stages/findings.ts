import { z } from "zod";
import { Finding, type SourcedFinding } from "../../../core/findings.ts";

// The finding schema and its embedding live in core: the operator reads them for the outcome record.
export { embedFindings, embedVerdict, extractFindings, Finding, type SourcedFinding } from "../../../core/findings.ts";

const text = z.string().trim().min(1);

export const FindingsReport = z.object({
  summary: text.describe("One or two sentences: the overall verdict"),
  findings: z.array(Finding),
});
export type FindingsReport = z.infer<typeof FindingsReport>;

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

import { z } from "zod";
import { redactDeep, redactText } from "./redact.ts";
import { Tokens } from "./usage.ts";

export const StageName = z.enum(["triage", "write", "review", "remediate"]);
export type StageName = z.infer<typeof StageName>;

export const RiskTier = z.enum(["low", "medium", "high"]);
export type RiskTier = z.infer<typeof RiskTier>;

/**
 * The one JSON document a runner pod writes to its termination message (`/dev/termination-log`).
 * Kubernetes keeps at most 4 KiB of it, so free text is truncated by `encodeResult`.
 * `outcome` is the agent's own verdict on the stage; infrastructure failures (OOM, eviction) never
 * produce a result and are told apart by the operator from the pod status.
 */
export const StageResult = z.object({
  stage: StageName,
  outcome: z.enum(["succeeded", "failed"]),
  summary: z.string().default(""),
  model: z.string().default(""),
  usage: Tokens.default({ input: 0, output: 0, cacheRead: 0, cacheWrite: 0 }),
  costUsd: z.number().nonnegative().default(0),
  turns: z.number().int().nonnegative().default(0),
  durationMs: z.number().int().nonnegative().default(0),
  /** The model gateway refused the stage's request for budget (egress: HTTP 402 budget_exhausted). */
  budgetExhausted: z.boolean().optional(),
  /**
   * Set when the stage did not end on its own: "Terminated" = the pod was stopped (SIGTERM: deletion, drain,
   * preemption) mid-stage. The operator treats it as an infrastructure failure (retried), not the agent's verdict.
   */
  failure: z.enum(["Terminated"]).optional(),
  triage: z
    .object({
      verdict: z.enum(["clear", "unclear"]),
      question: z.string().optional(),
      defaultAssumption: z.string().optional(),
      riskTier: RiskTier.optional(),
      commentId: z.number().int().optional(),
    })
    .optional(),
  write: z
    .object({
      prNumber: z.number().int().positive(),
      prUrl: z.string(),
      branch: z.string(),
      headSha: z.string(),
    })
    .optional(),
  review: z
    .object({
      riskTier: RiskTier,
      checks: z.record(z.string(), z.enum(["success", "failure", "skipped"])),
      findings: z.object({ total: z.number().int(), blocking: z.number().int() }),
    })
    .optional(),
  remediate: z.object({ headSha: z.string() }).optional(),
});
export type StageResult = z.infer<typeof StageResult>;
export type StageResultInput = z.input<typeof StageResult>;

/** Kubernetes truncates termination messages beyond this many bytes. */
export const TERMINATION_MESSAGE_LIMIT = 4096;

/** Serialises a result so that it fits the termination message, shortening free text if needed. */
export function encodeResult(result: StageResultInput): string {
  const parsed = StageResult.parse(result);
  let json = JSON.stringify(parsed);
  for (let keep = 1024; Buffer.byteLength(json) > TERMINATION_MESSAGE_LIMIT && keep >= 0; keep -= 256) {
    const short = { ...parsed, summary: clip(parsed.summary, keep) };
    if (short.triage?.question) short.triage = { ...short.triage, question: clip(short.triage.question, keep) };
    if (short.triage?.defaultAssumption)
      short.triage = { ...short.triage, defaultAssumption: clip(short.triage.defaultAssumption, keep) };
    json = JSON.stringify(short);
  }
  if (Buffer.byteLength(json) > TERMINATION_MESSAGE_LIMIT) throw new Error("stage result does not fit 4 KiB");
  return json;
}

/**
 * Parses a termination message; returns an error string rather than throwing, as pods are untrusted.
 * Every string is run through the secret patterns again: a pod's text reaches AgentRun status, Slack,
 * ClickUp and outcome records from here, and the runner that should have redacted it may not have.
 */
export function decodeResult(
  message: string | undefined,
): { ok: true; result: StageResult } | { ok: false; error: string } {
  if (!message?.trim()) return { ok: false, error: "empty termination message" };
  let raw: unknown;
  try {
    raw = JSON.parse(message);
  } catch {
    return { ok: false, error: `termination message is not JSON: ${clip(redactText(message), 200)}` };
  }
  const parsed = StageResult.safeParse(raw);
  if (!parsed.success) return { ok: false, error: `invalid stage result: ${parsed.error.issues[0]?.message ?? "?"}` };
  return { ok: true, result: redactDeep(parsed.data, redactText) };
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

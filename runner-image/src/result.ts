import fs from "node:fs";
import { type Redactor, redactDeep, redactText } from "../../core/redact.ts";
import { encodeResult, type StageResultInput } from "../../core/result.ts";

/**
 * Writes the stage's one result to the termination log (core/result.ts format, ≤ 4 KiB) and returns
 * the exit code: 0 when the stage succeeded, 1 when it failed. Every string in it (summary, triage
 * question and assumption, branch, URLs) is redacted: the termination message leaves the pod.
 */
export function writeResult(file: string, result: StageResultInput, redact: Redactor = redactText): number {
  fs.writeFileSync(file, encodeResult(redactDeep(result, redact)));
  return result.outcome === "succeeded" ? 0 : 1;
}

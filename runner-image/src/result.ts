import fs from "node:fs";
import { encodeResult, type StageResultInput } from "../../core/result.ts";

/**
 * Writes the stage's one result to the termination log (core/result.ts format, ≤ 4 KiB) and returns
 * the exit code: 0 when the stage succeeded, 1 when it failed.
 */
export function writeResult(file: string, result: StageResultInput): number {
  fs.writeFileSync(file, encodeResult(result));
  return result.outcome === "succeeded" ? 0 : 1;
}

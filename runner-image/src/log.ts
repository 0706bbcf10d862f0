import type { Redactor } from "./hooks/redact.ts";
import { redactDeep } from "./hooks/redact.ts";

export type Logger = (msg: string, data?: Record<string, unknown>) => void;

/**
 * JSON lines on stderr (stdout stays free), every field redacted. Carries the request ID so a run can
 * be followed from the webhook to the pod.
 */
export function createLogger(
  base: Record<string, unknown>,
  redact: Redactor,
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  return (msg, data = {}) => {
    const entry = redactDeep({ time: new Date().toISOString(), level: "info", msg, ...base, ...data }, redact);
    write(`${JSON.stringify(entry)}\n`);
  };
}

import { type Redactor, redactDeep } from "../../core/redact.ts";

export type Logger = (msg: string, data?: Record<string, unknown>) => void;

/**
 * JSON lines on stderr (stdout stays free): every field redacted, then the finished line again (keys,
 * and anything JSON escaping put together). Carries the request ID so a run can be followed from the
 * webhook to the pod.
 */
export function createLogger(
  base: Record<string, unknown>,
  redact: Redactor,
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  return (msg, data = {}) => {
    const entry = redactDeep({ time: new Date().toISOString(), level: "info", msg, ...base, ...data }, redact);
    write(`${redact(JSON.stringify(entry))}\n`);
  };
}

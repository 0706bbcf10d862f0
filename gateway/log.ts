import { type DestinationStream, type Logger, pino } from "pino";
import { createRedactor, logRedaction } from "../core/redact.ts";

/** The gateway's own fields pino replaces with "[redacted]" (on top of core's LOG_REDACT_PATHS: headers, tokens, keys). */
export const REDACT_PATHS = [
  "config.GITHUB_WEBHOOK_SECRET",
  "config.GITHUB_APP_PRIVATE_KEY",
  "config.CLICKUP_WEBHOOK_SECRET",
  "config.CLICKUP_API_TOKEN",
  "config.DISPATCH_TOKEN",
  "config.NATS_PASSWORD",
  "*.webhookSecret",
];

/** Bytes of log lines held before one write; a line per request would otherwise cost a syscall each. */
const LOG_BUFFER_BYTES = 4096;
const LOG_FLUSH_MS = 500;

/**
 * JSON logs with secrets redacted: the paths above, and every finished line through core/redact.ts
 * (the gateway's own `secrets` in every encoding, and the secret-pattern set). Without a destination, lines go to stdout through a 4 KiB
 * buffer flushed at least every 500 ms and on exit (a synchronous write per request line cost a
 * sixth of a webhook's CPU under load).
 *
 * @example
 * const logger = createLogger({ level: "info" });
 * logger.info({ config: env }, "starting"); // secrets show as "[redacted]"
 */
export function createLogger({
  level = "info",
  destination,
  secrets = [],
}: {
  level?: string;
  destination?: DestinationStream;
  /** The gateway's own secret values (webhook secrets, tokens, the App key). */
  secrets?: readonly (string | undefined)[];
} = {}): Logger {
  const options = {
    level,
    base: { component: "gateway" },
    ...logRedaction(createRedactor(secrets.filter((s): s is string => !!s)), REDACT_PATHS),
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (destination) return pino(options, destination);
  const stdout = pino.destination({ dest: 1, sync: true, minLength: LOG_BUFFER_BYTES });
  setInterval(() => stdout.flushSync(), LOG_FLUSH_MS).unref();
  process.once("exit", () => stdout.flushSync());
  return pino(options, stdout);
}

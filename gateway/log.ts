import { type DestinationStream, type Logger, pino } from "pino";

/** Paths pino replaces with "[redacted]" wherever they appear in a log line. */
export const REDACT_PATHS = [
  "headers.authorization",
  'headers["x-hub-signature-256"]',
  'headers["x-signature"]',
  "*.headers.authorization",
  '*.headers["x-hub-signature-256"]',
  '*.headers["x-signature"]',
  "config.GITHUB_WEBHOOK_SECRET",
  "config.GITHUB_APP_PRIVATE_KEY",
  "config.CLICKUP_WEBHOOK_SECRET",
  "config.CLICKUP_API_TOKEN",
  "config.DISPATCH_TOKEN",
  "*.privateKey",
  "*.token",
  "*.secret",
  "*.webhookSecret",
];

/**
 * JSON logs with secrets redacted.
 *
 * @example
 * const logger = createLogger({ level: "info" });
 * logger.info({ config: env }, "starting"); // secrets show as "[redacted]"
 */
export function createLogger({
  level = "info",
  destination,
}: {
  level?: string;
  destination?: DestinationStream;
} = {}): Logger {
  const options = {
    level,
    base: { component: "gateway" },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

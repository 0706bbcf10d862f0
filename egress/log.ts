import { type DestinationStream, type Logger, pino } from "pino";

/**
 * Paths pino replaces with "[redacted]": request headers carrying credentials (the attempt token
 * coming in, the provider key or forge token going out), the resolved configuration's secrets.
 */
export const REDACT_PATHS = [
  "headers.authorization",
  'headers["x-api-key"]',
  'headers["proxy-authorization"]',
  "*.headers.authorization",
  '*.headers["x-api-key"]',
  '*.headers["proxy-authorization"]',
  "config.ATTEMPT_TOKEN_KEY",
  "config.ADMIN_TOKEN",
  "config.MODEL_API_KEY",
  "*.attemptKey",
  "*.adminToken",
  "*.apiKey",
  "*.forgeToken",
  "*.token",
  "*.secret",
];

/**
 * JSON logs with secrets redacted; lines go to stdout through a 4 KiB buffer flushed at least every
 * 500 ms and on exit (as the webhook gateway does), unless a destination is given.
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
    base: { component: "egress" },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (destination) return pino(options, destination);
  const stdout = pino.destination({ dest: 1, sync: true, minLength: 4096 });
  setInterval(() => stdout.flushSync(), 500).unref();
  process.once("exit", () => stdout.flushSync());
  return pino(options, stdout);
}

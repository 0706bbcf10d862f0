import { type DestinationStream, type Logger, pino } from "pino";

/**
 * Paths pino replaces with "[redacted]". No line the gateway writes holds a credential (it never logs
 * headers or its configuration whole; the tests search every log line for every secret); these catch a
 * future mistake. No leading wildcards: those cost pino ~30 µs a line, on a line per request.
 */
export const REDACT_PATHS = [
  "headers.authorization",
  'headers["x-api-key"]',
  'headers["proxy-authorization"]',
  "req.headers.authorization",
  'req.headers["x-api-key"]',
  'req.headers["proxy-authorization"]',
  "config.attemptKey",
  "config.adminToken",
  "config.model.apiKey",
  "env.ATTEMPT_TOKEN_KEY",
  "env.ADMIN_TOKEN",
  "env.MODEL_API_KEY",
  "env.NATS_PASSWORD",
  "forgeToken",
  "token",
  "apiKey",
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

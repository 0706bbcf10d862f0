/**
 * Secret redaction: the runner applies it to every tool output before it reaches the model or a log
 * line, the pattern job to the rules it proposes.
 * Two layers: the exact values the runner holds (and their base64 forms, as they appear in
 * Authorization headers), and well-known token shapes, so secrets the runner never saw are caught too.
 */
const TOKEN_PATTERNS: RegExp[] = [
  /\bgh[pousr]_[A-Za-z0-9]{20,}\b/g, // GitHub tokens
  /\bgithub_pat_[A-Za-z0-9_]{20,}\b/g,
  /\bsk-ant-[A-Za-z0-9_-]{16,}/g, // Anthropic
  /\bsk-or-[A-Za-z0-9_-]{16,}/g, // OpenRouter
  /\bsk-(?:proj-)?[A-Za-z0-9]{32,}\b/g, // OpenAI-style
  /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, // AWS access key ids
  /\bxox[abprs]-[A-Za-z0-9-]{10,}/g, // Slack
  /\bAIza[0-9A-Za-z_-]{35}\b/g, // Google API keys
  /\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/g, // JWTs
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  /(aws_secret_access_key\s*[=:]\s*)[A-Za-z0-9/+=]{40}/gi,
  /(Authorization:\s*(?:Bearer|Basic|token)\s+)[A-Za-z0-9._~+/=-]{8,}/gi,
  /https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9/]+/g, // Slack incoming webhooks
  /\b(?:x-access-token|oauth2):[^@\s]+@/g, // credentials in clone URLs
];

export const REDACTED = "[REDACTED]";

export type Redactor = (text: string) => string;

/**
 * Builds a redactor for a set of secret values.
 *
 * @example createRedactor(["s3cr3t-value"])("token=s3cr3t-value") // "token=[REDACTED]"
 */
export function createRedactor(secrets: readonly string[]): Redactor {
  const values = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < 8) continue;
    values.add(secret);
    values.add(Buffer.from(secret).toString("base64"));
    values.add(Buffer.from(`x-access-token:${secret}`).toString("base64"));
    values.add(encodeURIComponent(secret));
  }
  const exact = [...values].filter((v) => v.length >= 8).sort((a, b) => b.length - a.length);
  return (text: string) => {
    let out = text;
    for (const value of exact) if (out.includes(value)) out = out.split(value).join(REDACTED);
    for (const pattern of TOKEN_PATTERNS) {
      out = out.replace(pattern, (match, prefix?: unknown) =>
        typeof prefix === "string" && match.startsWith(prefix) ? `${prefix}${REDACTED}` : REDACTED,
      );
    }
    return out;
  };
}

/** Redacts every string inside a JSON-like value. */
export function redactDeep<T>(value: T, redact: Redactor): T {
  if (typeof value === "string") return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, redact)) as T;
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, redact)])) as T;
  }
  return value;
}

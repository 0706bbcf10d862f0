/**
 * Secret redaction, the one implementation: the runner applies it to every tool output before the model
 * sees it and to every text that leaves its pod (forge comments, PR title and body, reviews, the result,
 * logs); the operator to its Slack, ClickUp and forge texts and its logs; the gateway to its logs; the
 * pattern job to the rules it proposes.
 *
 * Three layers, cheapest first:
 * 1. the exact values the caller holds (its own tokens and keys), in every form they travel in: as they
 *    are, URL-encoded, JSON-escaped, base64 (standard and URL-safe, at each of the three byte alignments,
 *    so a secret inside a longer base64 blob such as a Basic Authorization header is found too) and, for
 *    multi-line secrets (PEM keys), each long line;
 * 2. the secret-pattern set (core/secret-patterns.ts, after gitleaks' rules), so secrets the caller never
 *    saw are caught by shape or by the name they are assigned to;
 * 3. base64 runs that decode to text containing 1 or 2 (a token that was base64-encoded to slip past).
 */
import { SECRET_RULES, type SecretRule } from "./secret-patterns.ts";

export const REDACTED = "[REDACTED]";

export type Redactor = (text: string) => string;

/** Values shorter than this are never redacted by value: they would shred ordinary text. */
export const MIN_SECRET_LENGTH = 8;

const MIN_FORM_LENGTH = 8;
/** Shortest run of base64 characters worth decoding (a 15-byte plaintext). */
const MIN_BASE64_RUN = 20;

function b64(bytes: Buffer, urlSafe: boolean): string {
  const s = bytes.toString("base64");
  return urlSafe ? s.replace(/\+/g, "-").replace(/\//g, "_") : s;
}

/**
 * Every form in which `secret` can appear in text: raw, URL-encoded, JSON-escaped, base64 (whole, and
 * the part that is the same wherever it sits inside a longer base64 text), and each long line.
 */
export function secretForms(secret: string): string[] {
  const forms = new Set<string>([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)]);
  const bytes = Buffer.from(secret);
  for (const urlSafe of [false, true]) {
    const whole = b64(bytes, urlSafe);
    forms.add(whole);
    forms.add(whole.replace(/=+$/, ""));
    forms.add(b64(Buffer.from(`x-access-token:${secret}`), urlSafe));
    // Inside a longer base64 text the secret starts at byte offset 0, 1 or 2 of a 3-byte group: the
    // characters that depend only on the secret's bytes are the same for every text at that offset.
    for (let pad = 0; pad < 3; pad++) {
      const enc = b64(Buffer.concat([Buffer.alloc(pad), bytes]), urlSafe).replace(/=+$/, "");
      const start = pad === 0 ? 0 : 4;
      const end = (pad + bytes.length) % 3 === 0 ? enc.length : enc.length - 4;
      if (end > start) forms.add(enc.slice(start, end));
    }
  }
  if (secret.includes("\n"))
    for (const line of secret.split(/\r?\n/)) if (line.trim().length >= 16) forms.add(line.trim());
  return [...forms].filter((f) => f.length >= MIN_FORM_LENGTH);
}

/** Forms sorted longest first, so a whole encoding wins over a part of it. */
function knownForms(secrets: readonly string[]): string[] {
  const all = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    for (const form of secretForms(secret)) all.add(form);
  }
  return [...all].sort((a, b) => b.length - a.length);
}

function redactKnown(text: string, forms: readonly string[]): string {
  let out = text;
  for (const form of forms) if (out.includes(form)) out = out.split(form).join(REDACTED);
  return out;
}

type Groups = { s?: string; keep?: string };

function replacer(rule: SecretRule) {
  return (match: string, ...args: unknown[]): string => {
    const groups = args[args.length - 1] as Groups;
    const keep = groups.keep ?? "";
    if (rule.check && !rule.check(groups.s ?? match, keep)) return match;
    return `${keep}${REDACTED}`;
  };
}

const REPLACERS = SECRET_RULES.map(replacer);

const escapeRe = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** Every keyword, longest first; `(?=(…))` finds the longest one starting at each position. */
const KEYWORDS = [...new Set(SECRET_RULES.flatMap((r) => r.keywords))].sort((a, b) => b.length - a.length);
const KEYWORD_AT = new RegExp(`(?=(${KEYWORDS.map(escapeRe).join("|")}))`, "g");
/**
 * Keyword → the rules it triggers: those with a keyword inside it. Every keyword in a text is a prefix
 * of the longest keyword found where it starts, so this finds each rule whose keywords occur.
 */
const TRIGGERS = new Map(
  KEYWORDS.map((found) => [
    found,
    SECRET_RULES.flatMap((rule, i) => (rule.keywords.some((k) => found.includes(k)) ? [i] : [])),
  ]),
);

/** Indices (in order) of the rules one of whose keywords occurs in `lower`. */
function triggered(lower: string): number[] {
  const hit = new Set<number>();
  KEYWORD_AT.lastIndex = 0;
  for (let m = KEYWORD_AT.exec(lower); m; m = KEYWORD_AT.exec(lower)) {
    for (const i of TRIGGERS.get(m[1] as string) ?? []) hit.add(i);
    KEYWORD_AT.lastIndex = m.index + 1;
  }
  return [...hit].sort((a, b) => a - b);
}

/** Applies the secret-pattern set; a rule runs only when one of its keywords occurs in the text. */
export function redactPatterns(text: string): string {
  let out = text;
  for (const i of triggered(text.toLowerCase())) {
    const rule = SECRET_RULES[i] as SecretRule;
    rule.regex.lastIndex = 0;
    out = out.replace(rule.regex, REPLACERS[i] as (m: string, ...a: unknown[]) => string);
  }
  return out;
}

/** Printable ASCII (with tabs and newlines) for at least 95% of the bytes: base64 of text, not of binary. */
function isText(bytes: Buffer): boolean {
  if (bytes.length < 12) return false;
  let ok = 0;
  for (const b of bytes) if ((b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d) ok++;
  return ok >= bytes.length * 0.95;
}

/** Base64 digit values (standard and URL-safe alphabets); -1 for anything else. */
const B64_VALUE = new Int8Array(128).fill(-1);
for (const [i, c] of [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"].entries())
  B64_VALUE[c.charCodeAt(0)] = i;
B64_VALUE["-".charCodeAt(0)] = 62;
B64_VALUE["_".charCodeAt(0)] = 63;

const b64At = (text: string, i: number): number => {
  const c = text.charCodeAt(i);
  return c < 128 ? (B64_VALUE[c] as number) : -1;
};

/**
 * Whether `run` from `offset` decodes to (almost only) 7-bit bytes, read off the characters without
 * decoding: a byte is below 0x80 exactly when its top bit, which sits at a fixed place in the 4-character
 * group, is clear. Rejects identifiers, paths, UUIDs and digests before any decoding is done.
 */
function decodesToAscii(run: string, offset: number): boolean {
  let bad = 0;
  let total = 0;
  for (let i = offset; i + 1 < run.length; i += 4) {
    total++;
    if (b64At(run, i) >= 32) bad++;
    if (i + 2 < run.length) {
      total++;
      if ((b64At(run, i + 1) & 15) >= 8) bad++;
    }
    if (i + 3 < run.length) {
      total++;
      if ((b64At(run, i + 2) & 3) >= 2) bad++;
    }
  }
  return bad <= total * 0.05;
}

/** Decoded text of `run` from `offset` when it is text and `inner` finds a secret in it. */
function holdsSecret(run: string, body: string, offset: number, inner: (plain: string) => string): boolean {
  if (run.length - offset < MIN_BASE64_RUN || !decodesToAscii(body, offset)) return false;
  const bytes = Buffer.from(run.slice(offset), "base64");
  if (!isText(bytes)) return false;
  const plain = bytes.toString("latin1");
  return inner(plain) !== plain;
}

/** REDACTED for a base64 run whose decoded text `inner` would change (it holds a secret), else undefined. */
function redactRun(run: string, inner: (plain: string) => string): string | undefined {
  const body = run.endsWith("=") ? run.replace(/=+$/, "") : run;
  for (let offset = 0; offset < 4; offset++)
    if (holdsSecret(run, body, offset, inner)) return offset ? `${run.slice(0, offset)}${REDACTED}` : REDACTED;
  // A run glued to a word (`AUTH_<base64>`, `X-<base64>`): also after its first and last `_` or `-`
  // among the first 64 characters.
  const head = run.slice(0, 64);
  const first = Math.min(...["_", "-"].map((c) => head.indexOf(c)).filter((i) => i >= 0), 64);
  const last = Math.max(head.lastIndexOf("_"), head.lastIndexOf("-"));
  if (first === 64) return undefined;
  for (const at of first === last ? [first] : [first, last]) {
    if (at + 1 >= 4 && holdsSecret(run, body, at + 1, inner)) return `${run.slice(0, at + 1)}${REDACTED}`;
  }
  return undefined;
}

/** Replaces the base64 runs (at least MIN_BASE64_RUN long) of `text` that hold a secret once decoded. */
function redactEncoded(text: string, inner: (plain: string) => string): string {
  if (text.length < MIN_BASE64_RUN) return text;
  let out = "";
  let last = 0;
  for (let i = 0; i < text.length; ) {
    if (b64At(text, i) < 0) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < text.length && b64At(text, j) >= 0) j++;
    if (j - i >= MIN_BASE64_RUN) {
      let end = j;
      while (end < text.length && end - j < 2 && text[end] === "=") end++;
      const replacement = redactRun(text.slice(i, end), inner);
      if (replacement !== undefined) {
        out += text.slice(last, i) + replacement;
        last = end;
      }
      j = end;
    }
    i = j;
  }
  return last === 0 ? text : out + text.slice(last);
}

/**
 * Builds a redactor for the secret values the caller holds (the pattern set applies regardless).
 *
 * @example createRedactor(["s3cr3t-value"])("token=s3cr3t-value") // "token=[REDACTED]"
 */
export function createRedactor(secrets: readonly string[]): Redactor {
  const forms = knownForms(secrets);
  const inner = (text: string) => redactPatterns(redactKnown(text, forms));
  return (text: string) => {
    if (typeof text !== "string" || text === "") return text;
    return redactEncoded(inner(text), inner);
  };
}

/** The redactor for callers that hold no secrets of their own: patterns and encoded tokens only. */
export const redactText: Redactor = createRedactor([]);

/** Redacts every string inside a JSON-like value (keys too). */
export function redactDeep<T>(value: T, redact: Redactor): T {
  if (typeof value === "string") return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, redact)) as T;
  if (value && typeof value === "object" && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [redact(k), redactDeep(v, redact)])) as T;
  }
  return value;
}

/** Field paths every pino logger censors whatever their value looks like (the pattern set runs on top). */
export const LOG_REDACT_PATHS = [
  "token",
  "*.token",
  "*.privateKey",
  "*.secret",
  "*.authorization",
  "*.Authorization",
  "headers.authorization",
  "*.headers.authorization",
  'headers["x-hub-signature-256"]',
  'headers["x-signature"]',
  '*.headers["x-hub-signature-256"]',
  '*.headers["x-signature"]',
  "*.GITHUB_TOKEN",
  "*.GITHUB_APP_PRIVATE_KEY",
  "*.ANTHROPIC_API_KEY",
];

/**
 * pino options that redact every log line: `redact.paths` censors known fields, and the `streamWrite`
 * hook runs the redactor over the finished JSON line (message, bindings, error stacks included).
 * REDACTED holds no quote or backslash and the patterns never cross a JSON string's quotes, so the line
 * stays valid JSON.
 *
 * @example pino({ level: "info", ...logRedaction(createRedactor([appKey]), ["config.APP_SECRET"]) })
 */
export function logRedaction(
  redact: Redactor,
  extraPaths: readonly string[] = [],
): { redact: { paths: string[]; censor: string }; hooks: { streamWrite: (line: string) => string } } {
  return {
    redact: { paths: [...new Set([...LOG_REDACT_PATHS, ...extraPaths])], censor: "[redacted]" },
    hooks: { streamWrite: (line) => redact(line) },
  };
}

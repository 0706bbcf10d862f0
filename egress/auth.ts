import { timingSafeEqual } from "node:crypto";
import { AttemptTokenError, type VerifiedAttempt, verifyAttemptToken } from "../core/attempt-token.ts";

type HeaderGet = (name: string) => string | null | undefined;

/** The credential in `Authorization` (Bearer, token, or Basic with the token as password or user). */
export function credentialFrom(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const m = /^\s*(bearer|token|basic)\s+(\S+)\s*$/i.exec(value);
  if (!m) return undefined;
  if (m[1]?.toLowerCase() !== "basic") return m[2];
  const decoded = Buffer.from(m[2] ?? "", "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return decoded || undefined;
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  return password || user || undefined;
}

/** The attempt token a runner sends to the model proxy: `x-api-key`, or `Authorization: Bearer`. */
export function modelCredential(get: HeaderGet): string | undefined {
  return get("x-api-key")?.trim() || credentialFrom(get("authorization"));
}

export type Verified = { ok: true; attempt: VerifiedAttempt } | { ok: false; reason: string; message: string };

/**
 * Tokens already verified, until they expire: a runner sends the same token on every request, and
 * the signature check goes through WebCrypto's thread pool (a queue hop per request under load).
 * Keyed by the token itself, so only the exact bytes verified before hit; expiry is checked on every
 * hit. Whether the attempt is still current is never cached (the ledger answers that).
 */
const verifiedByKey = new WeakMap<Uint8Array, Map<string, VerifiedAttempt>>();
const MAX_CACHED = 10_000;

/** Verifies an attempt token; never throws. */
export async function verify(token: string | undefined, key: Uint8Array): Promise<Verified> {
  if (!token) return { ok: false, reason: "no_credential", message: "no attempt token was sent" };
  let verified = verifiedByKey.get(key);
  if (!verified) {
    verified = new Map();
    verifiedByKey.set(key, verified);
  }
  const hit = verified.get(token);
  if (hit) {
    if (hit.expiresAt.getTime() > Date.now()) return { ok: true, attempt: hit };
    verified.delete(token);
  }
  try {
    const attempt = await verifyAttemptToken(token, key);
    if (verified.size >= MAX_CACHED) verified.delete(verified.keys().next().value as string);
    verified.set(token, attempt);
    return { ok: true, attempt };
  } catch (err) {
    if (err instanceof AttemptTokenError) return { ok: false, reason: err.reason, message: err.message };
    return { ok: false, reason: "malformed", message: "the attempt token is not valid" };
  }
}

/** Constant-time comparison of the admin bearer token. */
export function adminAuthorized(header: string | null | undefined, adminToken: string): boolean {
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  if (!m?.[1]) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(adminToken);
  return a.length === b.length && timingSafeEqual(a, b);
}

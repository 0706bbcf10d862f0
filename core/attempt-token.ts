import { randomUUID } from "node:crypto";
import { errors, jwtVerify, SignJWT } from "jose";
import { z } from "zod";
import { StageName } from "./result.ts";

/**
 * The credential of one stage attempt: the only secret a runner pod holds. The operator issues it when
 * it starts the attempt; the egress gateway verifies it on every request and swaps it for the real
 * model key or forge token. It is an HS256 JWT signed with a key the operator and the egress gateway
 * share (a Secret), bound to the AgentRun (namespace, name, uid), the stage, the attempt number, the
 * repository and the agent branch, and short-lived.
 *
 * A valid signature is not enough on its own: the gateway also checks that the attempt is the one it
 * holds a reservation for (`expect`), so a token of an ended or superseded attempt is useless even
 * before it expires.
 */

export const ATTEMPT_TOKEN_ISSUER = "agentfactory-operator";
export const ATTEMPT_TOKEN_AUDIENCE = "agentfactory-egress";
/** Shortest key accepted: 256 bits, the size of HS256's output. */
export const MIN_KEY_BYTES = 32;
/** A token living longer than this is refused even with a valid signature (stages time out long before). */
export const MAX_LIFETIME_SECONDS = 24 * 3600;

const REPO = /^[\w.-]+\/[\w.-]+$/;

export const AttemptClaims = z.object({
  run: z.object({
    namespace: z.string().min(1).max(63),
    name: z.string().min(1).max(253),
    uid: z.string().min(1),
  }),
  stage: StageName,
  attempt: z.number().int().positive(),
  /** `owner/name` of the run's repository. */
  repo: z.string().regex(REPO),
  /** The branch the attempt may push (always `agent/…`). */
  branch: z.string().startsWith("agent/"),
});
export type AttemptClaims = z.infer<typeof AttemptClaims>;

/** What a verified token says, plus its id and lifetime. */
export interface VerifiedAttempt extends AttemptClaims {
  /** `jti`: unique per issued token (for logs). */
  tokenId: string;
  issuedAt: Date;
  expiresAt: Date;
}

export type AttemptTokenFailure =
  | "malformed" // not a JWT, wrong algorithm, bad claims shape
  | "signature" // not signed with the shared key
  | "expired"
  | "not_yet_valid"
  | "too_long_lived"
  | "other_run" // valid, but for another AgentRun (or a deleted and recreated one: other uid)
  | "other_attempt"; // valid, but for another stage or attempt of this run

export class AttemptTokenError extends Error {
  constructor(
    readonly reason: AttemptTokenFailure,
    message: string,
  ) {
    super(message);
    this.name = "AttemptTokenError";
  }
}

/**
 * The signing key from the shared Secret's value (its UTF-8 bytes, surrounding whitespace trimmed).
 * Throws when shorter than 32 bytes.
 */
export function attemptTokenKey(secret: string | Uint8Array): Uint8Array {
  const key = typeof secret === "string" ? new TextEncoder().encode(secret.trim()) : secret;
  if (key.byteLength < MIN_KEY_BYTES) {
    throw new Error(`the attempt token key must be at least ${MIN_KEY_BYTES} bytes (got ${key.byteLength})`);
  }
  return key;
}

/**
 * Signs a token for one attempt, valid for `ttlSeconds` from `now`.
 *
 * @example
 * const token = await issueAttemptToken(claims, attemptTokenKey(secret), { ttlSeconds: 2100 });
 */
export async function issueAttemptToken(
  claims: AttemptClaims,
  key: Uint8Array,
  { ttlSeconds, now = new Date() }: { ttlSeconds: number; now?: Date },
): Promise<string> {
  const c = AttemptClaims.parse(claims);
  if (!(ttlSeconds > 0 && ttlSeconds <= MAX_LIFETIME_SECONDS)) {
    throw new Error(`ttlSeconds must be in (0, ${MAX_LIFETIME_SECONDS}]`);
  }
  const iat = Math.floor(now.getTime() / 1000);
  return new SignJWT({
    ns: c.run.namespace,
    name: c.run.name,
    uid: c.run.uid,
    stage: c.stage,
    attempt: c.attempt,
    repo: c.repo,
    branch: c.branch,
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(ATTEMPT_TOKEN_ISSUER)
    .setAudience(ATTEMPT_TOKEN_AUDIENCE)
    .setSubject(`${c.run.namespace}/${c.run.name}`)
    .setJti(randomUUID())
    .setIssuedAt(iat)
    .setNotBefore(iat - 5)
    .setExpirationTime(iat + Math.floor(ttlSeconds))
    .sign(key);
}

export interface VerifyOptions {
  now?: Date;
  /** Seconds of clock skew tolerated on `exp`/`nbf` (default 5). */
  clockToleranceSeconds?: number;
  /** What the token must be for; each given field must match exactly. */
  expect?: {
    run?: { namespace?: string; name?: string; uid?: string };
    stage?: string;
    attempt?: number;
  };
}

const Payload = z.object({
  ns: z.string(),
  name: z.string(),
  uid: z.string(),
  stage: z.string(),
  attempt: z.number(),
  repo: z.string(),
  branch: z.string(),
  sub: z.string(),
  jti: z.string().min(1),
  iat: z.number(),
  exp: z.number(),
});

/**
 * Verifies a token: HS256 only, issuer and audience, not expired, not longer-lived than 24 h, claims
 * well-formed, and (with `expect`) for that run and attempt. Throws AttemptTokenError with the reason.
 */
export async function verifyAttemptToken(
  token: string,
  key: Uint8Array,
  { now = new Date(), clockToleranceSeconds = 5, expect }: VerifyOptions = {},
): Promise<VerifiedAttempt> {
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: ["HS256"],
      issuer: ATTEMPT_TOKEN_ISSUER,
      audience: ATTEMPT_TOKEN_AUDIENCE,
      currentDate: now,
      clockTolerance: clockToleranceSeconds,
      requiredClaims: ["exp", "iat", "jti", "sub"],
    }));
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw new AttemptTokenError("expired", "the attempt token has expired");
    if (err instanceof errors.JWSSignatureVerificationFailed) {
      throw new AttemptTokenError("signature", "the attempt token's signature is not valid");
    }
    if (err instanceof errors.JWTClaimValidationFailed && err.claim === "nbf") {
      throw new AttemptTokenError("not_yet_valid", "the attempt token is not valid yet");
    }
    throw new AttemptTokenError("malformed", `the attempt token is not valid: ${(err as Error).message}`);
  }
  const p = Payload.safeParse(payload);
  const claims = p.success
    ? AttemptClaims.safeParse({
        run: { namespace: p.data.ns, name: p.data.name, uid: p.data.uid },
        stage: p.data.stage,
        attempt: p.data.attempt,
        repo: p.data.repo,
        branch: p.data.branch,
      })
    : undefined;
  if (!p.success || !claims?.success || p.data.sub !== `${p.data.ns}/${p.data.name}`) {
    throw new AttemptTokenError("malformed", "the attempt token's claims are not well-formed");
  }
  if (p.data.exp - p.data.iat > MAX_LIFETIME_SECONDS) {
    throw new AttemptTokenError("too_long_lived", "the attempt token lives longer than allowed");
  }
  const c = claims.data;
  const run = expect?.run;
  if (
    run &&
    ((run.namespace !== undefined && run.namespace !== c.run.namespace) ||
      (run.name !== undefined && run.name !== c.run.name) ||
      (run.uid !== undefined && run.uid !== c.run.uid))
  ) {
    throw new AttemptTokenError("other_run", "the attempt token belongs to another run");
  }
  if (
    (expect?.stage !== undefined && expect.stage !== c.stage) ||
    (expect?.attempt !== undefined && expect.attempt !== c.attempt)
  ) {
    throw new AttemptTokenError("other_attempt", "the attempt token belongs to another stage attempt");
  }
  return {
    ...c,
    tokenId: p.data.jti,
    issuedAt: new Date(p.data.iat * 1000),
    expiresAt: new Date(p.data.exp * 1000),
  };
}

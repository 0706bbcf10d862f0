import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import {
  type AttemptClaims,
  AttemptTokenError,
  attemptTokenKey,
  issueAttemptToken,
  verifyAttemptToken,
} from "./attempt-token.ts";

const key = attemptTokenKey("k".repeat(32));
const claims: AttemptClaims = {
  run: { namespace: "agents", name: "calc-1-1a8f416f", uid: "7d1c9b9e-0000-4000-8000-000000000001" },
  stage: "write",
  attempt: 2,
  repo: "acme/calc",
  branch: "agent/1-add",
};
const now = new Date("2026-01-01T12:00:00Z");
const later = (s: number) => new Date(now.getTime() + s * 1000);

async function reason(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AttemptTokenError) return err.reason;
    throw err;
  }
  return "accepted";
}

describe("attempt tokens", () => {
  it("round-trips the claims and its lifetime", async () => {
    const token = await issueAttemptToken(claims, key, { ttlSeconds: 600, now });
    const v = await verifyAttemptToken(token, key, { now: later(599) });
    expect(v).toMatchObject(claims);
    expect(v.expiresAt.toISOString()).toBe("2026-01-01T12:10:00.000Z");
    expect(v.tokenId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("accepts the expected run and attempt", async () => {
    const token = await issueAttemptToken(claims, key, { ttlSeconds: 600, now });
    const v = await verifyAttemptToken(token, key, {
      now,
      expect: { run: claims.run, stage: "write", attempt: 2 },
    });
    expect(v.attempt).toBe(2);
  });

  it("refuses an expired token", async () => {
    const token = await issueAttemptToken(claims, key, { ttlSeconds: 600, now });
    expect(await reason(verifyAttemptToken(token, key, { now: later(606) }))).toBe("expired");
  });

  it("refuses a token of another run, or of a deleted and recreated run of the same name", async () => {
    const token = await issueAttemptToken(claims, key, { ttlSeconds: 600, now });
    expect(await reason(verifyAttemptToken(token, key, { now, expect: { run: { name: "other-run" } } }))).toBe(
      "other_run",
    );
    expect(
      await reason(verifyAttemptToken(token, key, { now, expect: { run: { ...claims.run, uid: "another-uid" } } })),
    ).toBe("other_run");
  });

  it("refuses a token of another attempt or stage of the same run", async () => {
    const token = await issueAttemptToken(claims, key, { ttlSeconds: 600, now });
    expect(await reason(verifyAttemptToken(token, key, { now, expect: { run: claims.run, attempt: 3 } }))).toBe(
      "other_attempt",
    );
    expect(await reason(verifyAttemptToken(token, key, { now, expect: { stage: "review" } }))).toBe("other_attempt");
  });

  it("refuses a token signed with another key, and a tampered payload", async () => {
    const token = await issueAttemptToken(claims, attemptTokenKey("x".repeat(40)), { ttlSeconds: 600, now });
    expect(await reason(verifyAttemptToken(token, key, { now }))).toBe("signature");
    const good = await issueAttemptToken(claims, key, { ttlSeconds: 600, now });
    const [h, p, s] = good.split(".");
    const payload = JSON.parse(Buffer.from(p ?? "", "base64url").toString());
    payload.repo = "acme/other";
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${s}`;
    expect(await reason(verifyAttemptToken(forged, key, { now }))).toBe("signature");
  });

  it("refuses alg=none and tokens that are not JWTs", async () => {
    const header = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
    const body = Buffer.from(JSON.stringify({ sub: "agents/x" })).toString("base64url");
    expect(await reason(verifyAttemptToken(`${header}.${body}.`, key, { now }))).toBe("malformed");
    expect(await reason(verifyAttemptToken("sk-ant-api03-real-key", key, { now }))).toBe("malformed");
  });

  it("refuses a validly signed token with a foreign shape or too long a life", async () => {
    const iat = Math.floor(now.getTime() / 1000);
    const sign = (branch: string, lifetime: number) =>
      new SignJWT({ ns: "agents", name: "r", uid: "u", stage: "write", attempt: 1, repo: "acme/calc", branch })
        .setProtectedHeader({ alg: "HS256" })
        .setIssuer("agentfactory-operator")
        .setAudience("agentfactory-egress")
        .setSubject("agents/r")
        .setJti("j")
        .setIssuedAt(iat)
        .setExpirationTime(iat + lifetime)
        .sign(key);
    expect(await reason(verifyAttemptToken(await sign("agent/1-x", 60), key, { now }))).toBe("accepted");
    // "main" is not an agent branch
    expect(await reason(verifyAttemptToken(await sign("main", 60), key, { now }))).toBe("malformed");
    expect(await reason(verifyAttemptToken(await sign("agent/1-x", 48 * 3600), key, { now }))).toBe("too_long_lived");
  });

  it("refuses keys shorter than 32 bytes and lifetimes over 24 h at issue", async () => {
    expect(() => attemptTokenKey("short")).toThrow(/at least 32 bytes/);
    await expect(issueAttemptToken(claims, key, { ttlSeconds: 25 * 3600 })).rejects.toThrow(/ttlSeconds/);
    await expect(issueAttemptToken({ ...claims, branch: "main" }, key, { ttlSeconds: 60 })).rejects.toThrow();
  });
});

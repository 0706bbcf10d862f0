import { createPublicKey, generateKeyPairSync, randomBytes, verify } from "node:crypto";
import { GitHubError } from "./http.ts";

export type Level = "read" | "write";
export type Permissions = Record<string, Level>;

/** What the simulated App was granted at installation; tokens can only narrow this. */
export const APP_PERMISSIONS: Permissions = {
  contents: "write",
  pull_requests: "write",
  issues: "write",
  metadata: "read",
};

export interface Grant {
  token: string;
  /** null: every repository of the installation (`repository_selection: "all"`). */
  repoIds: Set<number> | null;
  permissions: Permissions;
  expiresAt: Date;
}

export function generateAppKey(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

const jwtError = (message: string) => new GitHubError(401, message);

/**
 * Verifies an App JWT the way GitHub does: RS256 over `header.payload`, `iss` = the App id,
 * `iat` not in the future (60 s drift allowed), `exp` in the future but at most 10 minutes ahead.
 */
export function verifyAppJwt(jwt: string, publicKeyPem: string, appId: number, nowMs = Date.now()): void {
  const parts = jwt.split(".");
  if (parts.length !== 3) throw jwtError("A JSON web token could not be decoded");
  const [h, p, s] = parts as [string, string, string];
  let header: { alg?: string };
  let claims: { iss?: unknown; iat?: unknown; exp?: unknown };
  try {
    header = JSON.parse(Buffer.from(h, "base64url").toString("utf8"));
    claims = JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
  } catch {
    throw jwtError("A JSON web token could not be decoded");
  }
  if (header.alg !== "RS256") throw jwtError("A JSON web token could not be decoded");
  const ok = verify("RSA-SHA256", Buffer.from(`${h}.${p}`), createPublicKey(publicKeyPem), Buffer.from(s, "base64url"));
  if (!ok) throw jwtError("A JSON web token could not be decoded");
  if (String(claims.iss) !== String(appId)) throw jwtError("'Issuer' claim ('iss') must be an Integer");
  const now = Math.floor(nowMs / 1000);
  if (typeof claims.iat !== "number" || claims.iat > now + 60) {
    throw jwtError("'Issued at' claim ('iat') must be an Integer representing a time in the past");
  }
  if (typeof claims.exp !== "number" || claims.exp <= now) {
    throw jwtError(
      "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
    );
  }
  if (claims.exp > now + 600 + 60) throw jwtError("'Expiration time' claim ('exp') is too far in the future");
}

const LEVEL_RANK: Record<string, number> = { read: 1, write: 2, admin: 3 };

/** Intersects requested permissions with the App's; 422 when a request exceeds them. */
export function narrowPermissions(requested: unknown, app: Permissions = APP_PERMISSIONS): Permissions {
  if (requested === undefined || requested === null) return { ...app };
  if (typeof requested !== "object") throw new GitHubError(422, "Invalid request.");
  const out: Permissions = { metadata: "read" };
  for (const [name, level] of Object.entries(requested as Record<string, unknown>)) {
    const granted = app[name];
    if (!granted || typeof level !== "string" || (LEVEL_RANK[level] ?? 99) > (LEVEL_RANK[granted] ?? 0)) {
      throw new GitHubError(422, "The permissions requested are not granted to this installation.");
    }
    out[name] = level as Level;
  }
  return out;
}

export function allows(grant: Grant, area: string, level: Level): boolean {
  const have = grant.permissions[area];
  return have !== undefined && (LEVEL_RANK[have] ?? 0) >= (LEVEL_RANK[level] ?? 99);
}

export function newToken(): string {
  // ghs_ + 36 base62-ish characters, like GitHub's installation tokens.
  return `ghs_${randomBytes(27)
    .toString("base64")
    .replace(/[^A-Za-z0-9]/g, "")
    .padEnd(36, "0")
    .slice(0, 36)}`;
}

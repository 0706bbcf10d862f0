import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

/**
 * Seals the stage's installation token before it is written to the shared ledger (NATS KV), so a
 * reader of NATS alone learns nothing usable. AES-256-GCM under a key derived (HKDF-SHA256) from the
 * attempt token key, with the attempt as additional data: a sealed token only opens for the attempt
 * it was given for.
 */
export class Sealer {
  private readonly key: Buffer;

  constructor(attemptKey: Uint8Array) {
    this.key = Buffer.from(hkdfSync("sha256", attemptKey, "agentfactory-egress", "forge-token-seal/v1", 32));
  }

  seal(plain: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url");
  }

  /** The plain text, or undefined when the box was not sealed for this context (or with this key). */
  open(sealed: string, context: string): string | undefined {
    try {
      const raw = Buffer.from(sealed, "base64url");
      if (raw.length < 12 + 16) return undefined;
      const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString("utf8");
    } catch {
      return undefined;
    }
  }
}

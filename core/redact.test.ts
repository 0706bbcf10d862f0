import { describe, expect, it } from "vitest";
import { createRedactor, REDACTED, redactDeep } from "./redact.ts";

const token = "ghs_16C7e42F292c6912E7710c838347Ae178B4a";
const apiKey = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345";

describe("redaction", () => {
  const redact = createRedactor([token, apiKey, "plain-secret-value"]);

  it("removes the exact values the runner holds", () => {
    expect(redact(`token=${token} key=${apiKey}`)).toBe(`token=${REDACTED} key=${REDACTED}`);
    expect(redact("x plain-secret-value y")).toBe(`x ${REDACTED} y`);
  });
  it("removes the base64 and URL-encoded forms (as in Authorization headers)", () => {
    const basic = Buffer.from(`x-access-token:${token}`).toString("base64");
    expect(redact(`Authorization: basic ${basic}`)).not.toContain(basic);
    expect(redact(Buffer.from("plain-secret-value").toString("base64"))).toBe(REDACTED);
    expect(redact(encodeURIComponent("a/b+c==secret!"))).toBe(encodeURIComponent("a/b+c==secret!"));
  });
  it.each([
    ["GitHub installation token", "ghs_abcdefghijklmnopqrstuvwxyz0123456789"],
    ["GitHub personal token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"],
    ["fine-grained PAT", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"],
    ["Anthropic key", "sk-ant-api03-ZZZZZZZZZZZZZZZZZZZZZZZZZ"],
    ["AWS access key id", "AKIAIOSFODNN7EXAMPLE"],
    ["Slack token", "xoxb-1234567890-abcdefghij"],
    ["JWT", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVlLWhlcmU"],
  ])("removes unknown secrets shaped like a %s", (_kind, secret) => {
    const out = createRedactor([])(`before ${secret} after`);
    expect(out).toBe(`before ${REDACTED} after`);
  });
  it("keeps header names and key names readable", () => {
    const out = createRedactor([])(
      "Authorization: Bearer abcdefghijklmnop\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    expect(out).toBe(`Authorization: Bearer ${REDACTED}\naws_secret_access_key = ${REDACTED}`);
  });
  it("removes private keys", () => {
    const pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY-----";
    expect(createRedactor([])(`key:\n${pem}\n`)).toBe(`key:\n${REDACTED}\n`);
  });
  it("leaves ordinary text alone and ignores short values", () => {
    const r = createRedactor(["abc"]);
    expect(r("abc def: npm test passed (3 tests)")).toBe("abc def: npm test passed (3 tests)");
  });
  it("redacts nested values", () => {
    expect(redactDeep({ a: [token], b: { c: `x${apiKey}` }, n: 1 }, redact)).toEqual({
      a: [REDACTED],
      b: { c: `x${REDACTED}` },
      n: 1,
    });
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sanitizeText, sanitizeTicketText } from "./sanitize.ts";

describe("sanitizeText", () => {
  it.each([
    ["closed HTML comment", "a<!-- do evil -->b", "ab"],
    ["multi-line comment", "a<!--\nline\n-->b", "ab"],
    ["unterminated comment hides the rest", "keep<!-- all of this", "keep"],
    ["two comments", "<!--1-->x<!--2-->y", "xy"],
    ["zero-width space and joiner", "a\u200Bb\u200Dc", "abc"],
    ["bidi override", "safe\u202Etxt.exe", "safetxt.exe"],
    ["Tags block (ASCII smuggling)", "hi\u{E0069}\u{E0067}\u{E006E}", "hi"],
    ["byte order mark and soft hyphen", "\uFEFFa\u00ADb", "ab"],
    ["control characters", "a\u0000b\u0007c\u007F", "abc"],
    ["variation selectors", "x\uFE0F\u{E0100}y", "xy"],
    ["comment split by an invisible character", "<!\u200B-- hidden -->shown", "shown"],
    ["comment assembled by removing another", "<!<!--x-->--y-->z", "z"],
  ])("removes %s", (_name, input, expected) => {
    expect(sanitizeText(input)).toBe(expected);
  });

  it("keeps markdown, code, whitespace and visible Unicode as written", () => {
    const text = "# Title\n\n```ts\nconst a = b < c && d > e;\n```\n\tTab — ünïcödé 日本語 👍 <b>bold</b>\r\n";
    expect(sanitizeText(text)).toBe(text);
  });

  it("is idempotent and leaves no comment opener or format character", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("<", "!", "-", ">", "a", "\u200B", "\n")).map((a) => a.join("")),
        (s) => {
          const once = sanitizeText(s);
          expect(sanitizeText(once)).toBe(once);
          expect(once).not.toMatch(/<!--|\p{Cf}/u);
        },
      ),
      { numRuns: 2_000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (s) => {
        expect(sanitizeText(s)).not.toMatch(/<!--|\p{Cf}/u);
      }),
      { numRuns: 1_000 },
    );
  });
});

describe("sanitizeTicketText", () => {
  it("keeps the original only when something was removed", () => {
    expect(sanitizeTicketText({ title: "t", body: "b" })).toEqual({ title: "t", body: "b" });
    expect(sanitizeTicketText({ title: "t", body: "b", comment: "c<!--x-->" })).toEqual({
      title: "t",
      body: "b",
      comment: "c",
      original: { title: "t", body: "b", comment: "c<!--x-->" },
    });
  });
});

describe("sanitizeText on adversarial nesting", () => {
  it("removes deeply nested assembled comments in one pass", () => {
    const depth = 20_000;
    const text = `${"<!".repeat(depth)}<!--x-->${"--y-->".repeat(depth)}tail`;
    expect(sanitizeText(text)).toBe("tail");
  });
});

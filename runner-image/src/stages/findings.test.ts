import { describe, expect, it } from "vitest";
import { embedFindings, extractFindings, findingLine } from "./findings.ts";

const finding = {
  source: "claude-review",
  severity: "high" as const,
  file: "src/a.ts",
  line: 3,
  title: "SQL injection",
  detail: "uses string concatenation -->",
  blocking: true,
};

describe("findings", () => {
  it("round-trip through a review body, even with comment terminators in the text", () => {
    const body = `Review text\n${embedFindings([finding])}\nmore`;
    expect(extractFindings(body)).toEqual([finding]);
  });
  it("ignore bodies without or with malformed findings", () => {
    expect(extractFindings("🚫 BLOCKING ISSUES FOUND")).toBeUndefined();
    expect(extractFindings("<!-- agentfactory:findings bm90IGpzb24= -->")).toBeUndefined();
  });
  it("render one line per finding", () => {
    expect(findingLine(finding, 0)).toBe(
      "1. 🟧 **BLOCKING** [claude-review] `src/a.ts:3` **SQL injection**: uses string concatenation -->",
    );
  });
});

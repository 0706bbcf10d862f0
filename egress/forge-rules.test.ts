import { describe, expect, it } from "vitest";
import { bodyRefusal, decideApi, protectedTouched } from "./forge-rules.ts";

describe("decideApi", () => {
  it("allows the stage's endpoints on the run's repository", () => {
    expect(decideApi("write", "acme/calc", "POST", "/repos/acme/calc/pulls").allowed).toBe(true);
    expect(decideApi("write", "acme/calc", "GET", "/repos/Acme/Calc").allowed).toBe(true);
    expect(decideApi("review", "acme/calc", "POST", "/repos/acme/calc/pulls/2/reviews").allowed).toBe(true);
    expect(decideApi("triage", "acme/calc", "DELETE", "/repos/acme/calc/issues/1/labels/needs%20info").allowed).toBe(
      true,
    );
    expect(decideApi("review", "acme/calc", "GET", "/repos/acme/calc/contents/src/a.ts").allowed).toBe(true);
  });
  it("refuses other repositories, other endpoints and other stages' endpoints", () => {
    expect(decideApi("write", "acme/calc", "POST", "/repos/acme/other/pulls")).toMatchObject({ allowed: false });
    expect(decideApi("write", "acme/calc", "DELETE", "/repos/acme/calc")).toMatchObject({ allowed: false });
    expect(decideApi("write", "acme/calc", "PUT", "/repos/acme/calc/pulls/2/merge").allowed).toBe(false);
    expect(decideApi("triage", "acme/calc", "POST", "/repos/acme/calc/pulls").allowed).toBe(false);
    expect(decideApi("write", "acme/calc", "POST", "/repos/acme/calc/pulls/2/reviews").allowed).toBe(false);
    expect(decideApi("write", "acme/calc", "GET", "/user").allowed).toBe(false);
    expect(decideApi("write", "acme/calc", "GET", "/installation/repositories").allowed).toBe(false);
    expect(decideApi("write", "acme/calc", "PUT", "/repos/acme/calc/contents/.github/workflows/x.yml").allowed).toBe(
      false,
    );
  });
  it("refuses paths that could be read as another repository", () => {
    expect(decideApi("write", "acme/calc", "GET", "/repos/acme/calc/../other").allowed).toBe(false);
    expect(decideApi("write", "acme/calc", "GET", "/repos/acme/calc%2F..%2Fother/pulls").allowed).toBe(false);
    expect(decideApi("write", "acme/calc", "GET", "/repos/acme/calc/pulls/1/../../../../other").allowed).toBe(false);
    expect(decideApi("write", "acme/calc", "GET", "/repos/acme/calc/contents/%2e%2e/%2E%2E/x").allowed).toBe(false);
  });
});

describe("protectedTouched", () => {
  const globs = [".github/workflows/**", ".claude/settings.json"];
  it("matches workflows at any depth below the folder and the root settings file", () => {
    expect(
      protectedTouched(
        [
          ".github/workflows/ci.yml",
          ".github/workflows/sub/x.yaml",
          ".claude/settings.json",
          "src/.claude/settings.json",
        ],
        globs,
      ),
    ).toEqual([".github/workflows/ci.yml", ".github/workflows/sub/x.yaml", ".claude/settings.json"]);
    expect(protectedTouched(["README.md", ".github/CODEOWNERS", ".claude/rules/patterns.md"], globs)).toEqual([]);
  });
});

describe("bodyRefusal", () => {
  const run = { repo: "acme/calc", branch: "agent/1-fix" };
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  it("opens pull requests only from the run's branch", () => {
    expect(
      bodyRefusal("POST", "/repos/acme/calc/pulls", json({ head: "agent/1-fix", base: "main" }), run),
    ).toBeUndefined();
    expect(
      bodyRefusal("POST", "/repos/acme/calc/pulls", json({ head: "acme:agent/1-fix", base: "main" }), run),
    ).toBeUndefined();
    expect(bodyRefusal("POST", "/repos/acme/calc/pulls", json({ head: "main", base: "release" }), run)).toMatch(
      /only from/,
    );
    expect(bodyRefusal("POST", "/repos/acme/calc/pulls", json({ head: "fork:agent/1-fix" }), run)).toMatch(/only from/);
    expect(bodyRefusal("POST", "/repos/acme/calc/pulls", Buffer.from("{"), run)).toMatch(/not JSON/);
  });
  it("lets an update change only the title and body", () => {
    expect(bodyRefusal("PATCH", "/repos/acme/calc/pulls/2", json({ body: "stats" }), run)).toBeUndefined();
    expect(bodyRefusal("PATCH", "/repos/acme/calc/pulls/2", json({ base: "release", body: "x" }), run)).toMatch(/base/);
    expect(bodyRefusal("PATCH", "/repos/acme/calc/pulls/2", json({ state: "closed" }), run)).toMatch(/state/);
    expect(bodyRefusal("POST", "/repos/acme/calc/issues/1/comments", json({ body: "hi" }), run)).toBeUndefined();
  });
});

import { describe, expect, it } from "vitest";
import { ApiError } from "./errors.ts";
import { jsonPatch, mergePatch, strategicMergePatch } from "./patch.ts";

describe("mergePatch (RFC 7386)", () => {
  it.each([
    [{ a: 1, b: { c: 2 } }, { b: { c: null, d: 3 } }, { a: 1, b: { d: 3 } }],
    [{ a: [1, 2] }, { a: [3] }, { a: [3] }],
    [{ a: 1 }, { a: null }, {}],
    [undefined, { a: { b: 1 } }, { a: { b: 1 } }],
  ])("%j + %j = %j", (target, patch, want) => {
    expect(mergePatch(target, patch)).toEqual(want);
  });
});

describe("strategicMergePatch", () => {
  it("merges containers and env by name, conditions by type, and honours $patch: delete", () => {
    const target = {
      containers: [{ name: "a", image: "x", env: [{ name: "A", value: "1" }] }],
      conditions: [{ type: "Ready", status: "False" }],
    };
    const patch = {
      containers: [{ name: "a", env: [{ name: "B", value: "2" }] }],
      conditions: [
        { type: "Ready", status: "True" },
        { type: "Gone", $patch: "delete" },
      ],
      $setElementOrder: { conditions: [{ type: "Ready" }] },
    };
    expect(strategicMergePatch(target, patch)).toEqual({
      containers: [
        {
          name: "a",
          image: "x",
          env: [
            { name: "A", value: "1" },
            { name: "B", value: "2" },
          ],
        },
      ],
      conditions: [{ type: "Ready", status: "True" }],
    });
  });
});

describe("jsonPatch (RFC 6902)", () => {
  it("adds, replaces, removes, moves, copies and tests", () => {
    const doc = { a: [1, 2], b: { c: "x" } };
    const out = jsonPatch(doc, [
      { op: "add", path: "/a/-", value: 3 },
      { op: "add", path: "/a/0", value: 0 },
      { op: "replace", path: "/b/c", value: "y" },
      { op: "copy", from: "/b/c", path: "/d" },
      { op: "move", from: "/d", path: "/e~1f" },
      { op: "remove", path: "/a/1" },
      { op: "test", path: "/e~1f", value: "y" },
    ]);
    expect(out).toEqual({ a: [0, 2, 3], b: { c: "y" }, "e/f": "y" });
    expect(doc).toEqual({ a: [1, 2], b: { c: "x" } });
  });

  it("fails a failed test with 422 and a missing path with 400", () => {
    const err = (ops: unknown) => {
      try {
        jsonPatch({ a: 1 }, ops);
      } catch (e) {
        return (e as ApiError).code;
      }
      return 0;
    };
    expect(err([{ op: "test", path: "/a", value: 2 }])).toBe(422);
    expect(err([{ op: "remove", path: "/b" }])).toBe(400);
    expect(err([{ op: "replace", path: "/b", value: 1 }])).toBe(400);
    expect(new ApiError(400, "BadRequest", "x").toStatus()).toMatchObject({ kind: "Status", code: 400 });
  });
});

import { describe, expect, it } from "vitest";
import type { ApiError } from "./errors.ts";
import { builtinTypes } from "./resources.ts";
import { Store } from "./store.ts";

const types = builtinTypes();
const rt = (plural: string) => types.find((t) => t.plural === plural && t.group === "")!;

function store(historyLimit: number): Store {
  const s = new Store(types, historyLimit);
  s.create(rt("namespaces"), undefined, { metadata: { name: "ns" } });
  return s;
}

describe("Store watch history", () => {
  it("keeps a window per resource, so busy pods do not expire a quiet watcher of secrets", () => {
    const s = store(3);
    s.create(rt("secrets"), "ns", { metadata: { name: "s1" } });
    const secretsRv = s.rv;
    for (let i = 0; i < 5; i++) s.create(rt("configmaps"), "ns", { metadata: { name: `c${i}` } });
    expect(s.eventsSince("/secrets", secretsRv)).toEqual([]);
    s.create(rt("secrets"), "ns", { metadata: { name: "s2" } });
    expect(s.eventsSince("/secrets", secretsRv).map((e) => e.object.metadata)).toMatchObject([{ name: "s2" }]);
    const err = (() => {
      try {
        s.eventsSince("/configmaps", secretsRv);
      } catch (e) {
        return e as ApiError;
      }
    })();
    expect(err?.code).toBe(410);
    s.compact();
    expect(() => s.eventsSince("/secrets", secretsRv)).toThrow(/too old resource version/);
    expect(s.eventsSince("/secrets", s.rv)).toEqual([]);
  });

  it("counts resourceVersions globally and skips no-op writes", () => {
    const s = store(10);
    const a = s.create(rt("configmaps"), "ns", { metadata: { name: "a" }, data: { k: "1" } });
    const b = s.create(rt("secrets"), "ns", { metadata: { name: "b" } });
    expect(Number((b.metadata as { resourceVersion: string }).resourceVersion)).toBe(
      Number((a.metadata as { resourceVersion: string }).resourceVersion) + 1,
    );
    const same = s.update(rt("configmaps"), "ns", "a", structuredClone(a));
    expect(same).toBe(a);
    expect(s.eventsSince("/configmaps", 0).map((e) => e.type)).toEqual(["ADDED"]);
  });
});

import { describe, expect, it } from "vitest";
import { FakeForge } from "../test/gateway/fakes.ts";
import { cachedPermissions, canSteer } from "./forge.ts";

describe("canSteer", () => {
  it.each([
    ["admin", true],
    ["write", true],
    ["read", false],
    ["none", false],
  ] as const)("%s → %s", (permission, expected) => {
    expect(canSteer(permission)).toBe(expected);
  });
});

describe("cachedPermissions", () => {
  const ref = { installationId: 1, repo: "acme/widgets", user: "Maintainer" };

  it("asks the forge once per sender within the TTL, case-insensitively, and again after it", async () => {
    const forge = new FakeForge({ Maintainer: "write" });
    let now = 1_000;
    const cached = cachedPermissions(forge, { ttlMs: 60_000, now: () => now });
    expect(await cached.permission(ref)).toBe("write");
    expect(await cached.permission({ ...ref, user: "maintainer", repo: "ACME/widgets" })).toBe("write");
    expect(forge.calls).toBe(1);
    expect(cached.hits()).toBe(1);
    now += 60_001;
    await cached.permission(ref);
    expect(forge.calls).toBe(2);
  });

  it("keeps installations and repositories apart", async () => {
    const forge = new FakeForge({ Maintainer: "write" });
    const cached = cachedPermissions(forge, { ttlMs: 60_000 });
    await cached.permission(ref);
    await cached.permission({ ...ref, installationId: 2 });
    await cached.permission({ ...ref, repo: "acme/other" });
    expect(forge.calls).toBe(3);
  });

  it("does not cache failures", async () => {
    const forge = new FakeForge({ Maintainer: "write" });
    const cached = cachedPermissions(forge, { ttlMs: 60_000 });
    forge.down = true;
    await expect(cached.permission(ref)).rejects.toThrow("forge unavailable");
    forge.down = false;
    expect(await cached.permission(ref)).toBe("write");
  });

  it("evicts the oldest entry when full", async () => {
    const forge = new FakeForge({});
    const cached = cachedPermissions(forge, { ttlMs: 60_000, maxEntries: 2 });
    for (const user of ["a", "b", "c", "b", "a"]) await cached.permission({ ...ref, user });
    // a, b, c miss; b hits; a was evicted when c came in.
    expect(forge.calls).toBe(4);
  });
});

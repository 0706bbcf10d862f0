import { describe, expect, it } from "vitest";
import { WorkQueue } from "./workqueue.ts";

describe("WorkQueue", () => {
  it("de-duplicates waiting keys", async () => {
    const q = new WorkQueue({ name: "t" });
    q.add("a");
    q.add("a");
    q.add("b");
    expect(q.length).toBe(2);
    expect(await q.get()).toBe("a");
    expect(await q.get()).toBe("b");
  });

  it("puts front keys ahead of waiting ones, first come first served among them", async () => {
    const q = new WorkQueue({ name: "t" });
    q.add("a");
    q.add("b");
    q.add("c", { front: true });
    q.add("b", { front: true });
    q.add("d", { front: true });
    expect([await q.get(), await q.get(), await q.get(), await q.get()]).toEqual(["c", "b", "d", "a"]);
  });

  it("keeps a front key re-added while processing ahead of ordinary keys", async () => {
    const q = new WorkQueue({ name: "t" });
    q.add("a", { front: true });
    const key = await q.get();
    q.add("b");
    q.add("a", { front: true }); // arrives while "a" is being processed
    q.done(key!);
    expect([await q.get(), await q.get()]).toEqual(["a", "b"]);
  });

  it("hands a key to one worker at a time and re-queues it when re-added while processing", async () => {
    const q = new WorkQueue({ name: "t" });
    q.add("a");
    const key = await q.get();
    q.add("a"); // arrives while "a" is being processed
    expect(q.length).toBe(0);
    q.done(key!);
    expect(q.length).toBe(1);
  });

  it("runs one reconcile per key at a time under concurrency", async () => {
    const q = new WorkQueue({ name: "t" });
    let active = 0;
    let maxActive = 0;
    let calls = 0;
    const done = q.run(4, async () => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      calls += 1;
      if (calls < 5) q.add("same");
      await new Promise((r) => setTimeout(r, 5));
      active -= 1;
      return undefined;
    });
    q.add("same");
    await new Promise((r) => setTimeout(r, 200));
    q.shutDown();
    await done;
    expect(maxActive).toBe(1);
    expect(calls).toBeGreaterThanOrEqual(2);
  });

  it("backs off failing keys exponentially per key and forgets on success", async () => {
    let t = 0;
    const q = new WorkQueue({ name: "t", baseDelayMs: 10, maxDelayMs: 40, qps: 1000, burst: 1000, now: () => t });
    const delays: number[] = [];
    const orig = q.addAfter.bind(q);
    q.addAfter = (key: string, ms: number) => {
      delays.push(ms);
      orig(key, ms);
    };
    for (let i = 0; i < 4; i++) q.addRateLimited("k");
    expect(delays).toEqual([10, 20, 40, 40]);
    expect(q.failureCount("k")).toBe(4);
    q.forget("k");
    expect(q.failureCount("k")).toBe(0);
    t += 1;
    q.shutDown();
  });

  it("the global bucket delays rate-limited adds beyond the burst", () => {
    const q = new WorkQueue({ name: "t", baseDelayMs: 1, qps: 10, burst: 2, now: () => 0 });
    const delays: number[] = [];
    q.addAfter = (_key: string, ms: number) => void delays.push(ms);
    q.addRateLimited("a");
    q.addRateLimited("b");
    q.addRateLimited("c");
    expect(delays[0]).toBe(1);
    expect(delays[1]).toBe(1);
    expect(delays[2]).toBe(100);
  });

  it("keeps the earliest of several delayed adds and delivers it", async () => {
    const q = new WorkQueue({ name: "t" });
    q.addAfter("a", 10_000);
    q.addAfter("a", 20);
    expect(q.length).toBe(0);
    expect(await q.get()).toBe("a");
    q.shutDown();
  });

  it("re-adds a key whose reconcile threw, and schedules requeueAfter", async () => {
    const q = new WorkQueue({ name: "t", baseDelayMs: 1 });
    const seen: string[] = [];
    const done = q.run(1, async (key) => {
      seen.push(key);
      if (seen.length === 1) throw new Error("boom");
      if (seen.length === 2) return { requeueAfterMs: 5 };
      return undefined;
    });
    q.add("x");
    await new Promise((r) => setTimeout(r, 100));
    q.shutDown();
    await done;
    expect(seen).toEqual(["x", "x", "x"]);
  });
});

import type { V1ConfigMap } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient, loadKubeConfig } from "../../operator/kube/client.ts";
import { ResilientInformer } from "../../operator/kube/informer.ts";
import { LeaderElector, microTime } from "../../operator/kube/leader.ts";
import { type KubeSim, startKubeSim } from "../world/kube/index.ts";

const NS = "agentfactory";
let sim: KubeSim;
let kube: KubeClient;

beforeAll(async () => {
  sim = await startKubeSim();
  kube = new KubeClient(loadKubeConfig(sim.kubeconfigPath));
});
afterAll(async () => {
  await sim?.stop();
});

const until = async (what: string, fn: () => boolean, ms = 15_000) => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe("ResilientInformer", () => {
  it("keeps its cache current across closed watches and a compaction (410 → relist)", async () => {
    const seen: string[] = [];
    const restarts: string[] = [];
    const inf = new ResilientInformer<V1ConfigMap>({
      name: "cm",
      kc: kube.kc,
      path: `/api/v1/namespaces/${NS}/configmaps`,
      list: () => kube.core.listNamespacedConfigMap({ namespace: NS }),
      baseBackoffMs: 20,
      onRestart: (_n, reason) => void restarts.push(reason),
    });
    inf.on((o, kind) => seen.push(`${kind}:${o.metadata?.name}`));
    sim.create("configmaps", { metadata: { name: "a", namespace: NS }, data: {} });
    await inf.start();
    expect(inf.hasSynced).toBe(true);
    expect(inf.get("a", NS)).toBeDefined();

    sim.closeWatches();
    sim.create("configmaps", { metadata: { name: "b", namespace: NS }, data: {} });
    await until("b seen after reconnect", () => !!inf.get("b", NS));

    sim.compact();
    sim.closeWatches();
    sim.delete("configmaps", NS, "a");
    sim.create("configmaps", { metadata: { name: "c", namespace: NS }, data: {} });
    await until("c seen and a gone after relist", () => !!inf.get("c", NS) && !inf.get("a", NS));
    expect(seen).toEqual(expect.arrayContaining(["add:a", "add:b", "add:c", "delete:a"]));
    await inf.stop();
  });

  it("restarts after a list error, with backoff, instead of stopping for good", async () => {
    let calls = 0;
    const restarts: string[] = [];
    const inf = new ResilientInformer<V1ConfigMap>({
      name: "flaky",
      kc: kube.kc,
      path: `/api/v1/namespaces/${NS}/configmaps`,
      list: async () => {
        calls += 1;
        if (calls <= 2) throw Object.assign(new Error("boom"), { code: 500 });
        return kube.core.listNamespacedConfigMap({ namespace: NS });
      },
      baseBackoffMs: 20,
      onRestart: (_n, reason) => void restarts.push(reason),
    });
    await inf.start().catch(() => {});
    await until("synced after retries", () => inf.hasSynced && !!inf.get("b", NS));
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(restarts.length).toBeGreaterThanOrEqual(2);
    await inf.stop();
  });

  it("the watchdog restarts a watch that went silent", async () => {
    const restarts: string[] = [];
    const inf = new ResilientInformer<V1ConfigMap>({
      name: "quiet",
      kc: kube.kc,
      path: `/api/v1/namespaces/${NS}/configmaps`,
      list: () => kube.core.listNamespacedConfigMap({ namespace: NS }),
      watchdogMs: 1500,
      onRestart: (_n, reason) => void restarts.push(reason),
    });
    await inf.start();
    await until("watchdog fired", () => restarts.some((r) => r.startsWith("watchdog")), 10_000);
    sim.create("configmaps", { metadata: { name: "d", namespace: NS }, data: {} });
    await until("still current after the watchdog", () => !!inf.get("d", NS));
    await inf.stop();
  });

  it("finds cached objects by label through an index that follows adds, relabels and deletes", async () => {
    const inf = new ResilientInformer<V1ConfigMap>({
      name: "cm-index",
      kc: kube.kc,
      path: `/api/v1/namespaces/${NS}/configmaps`,
      list: () => kube.core.listNamespacedConfigMap({ namespace: NS }),
    });
    const cm = (name: string, run: string) => ({ metadata: { name, namespace: NS, labels: { "idx-run": run } } });
    await kube.core.createNamespacedConfigMap({ namespace: NS, body: cm("idx-a1", "a") });
    await inf.start();
    try {
      const names = (v: string) =>
        inf
          .byLabel("idx-run", v, NS)
          .map((o) => o.metadata?.name)
          .sort();
      expect(names("a")).toEqual(["idx-a1"]); // built from the cache on first use
      await kube.core.createNamespacedConfigMap({ namespace: NS, body: cm("idx-a2", "a") });
      await kube.core.createNamespacedConfigMap({ namespace: NS, body: cm("idx-b1", "b") });
      await until("adds indexed", () => names("a").length === 2 && names("b").length === 1);
      await kube.core.replaceNamespacedConfigMap({ namespace: NS, name: "idx-a2", body: cm("idx-a2", "b") });
      await until("relabel", () => names("a").join() === "idx-a1" && names("b").join() === "idx-a2,idx-b1");
      await kube.core.deleteNamespacedConfigMap({ namespace: NS, name: "idx-b1" });
      await until("delete", () => names("b").join() === "idx-a2");
      expect(inf.byLabel("idx-run", "b", "other")).toEqual([]);
    } finally {
      await inf.stop();
    }
  });
});

describe("LeaderElector", () => {
  it("one leader at a time; a released lease passes to the standby", async () => {
    const mk = (identity: string) =>
      new LeaderElector({ api: kube.coordination, namespace: NS, name: "test-lease", identity, retryPeriodMs: 100 });
    const a = mk("a");
    await a.run();
    expect(a.isLeader).toBe(true);
    const b = mk("b");
    let bLeads = false;
    const bRun = b.run().then(() => {
      bLeads = true;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(bLeads).toBe(false);
    const lease = sim.get("leases", NS, "test-lease") as { spec: { holderIdentity: string; renewTime: string } };
    expect(lease.spec.holderIdentity).toBe("a");
    expect(lease.spec.renewTime).toMatch(/\.\d{6}Z$/);
    await a.release();
    await bRun;
    expect(bLeads).toBe(true);
    expect((sim.get("leases", NS, "test-lease") as { spec: { holderIdentity: string } }).spec.holderIdentity).toBe("b");
    await b.release();
  });

  it("reports loss when it cannot renew within the deadline", async () => {
    const e = new LeaderElector({
      api: kube.coordination,
      namespace: NS,
      name: "lost-lease",
      identity: "x",
      retryPeriodMs: 50,
      renewDeadlineMs: 200,
    });
    await e.run();
    // Someone else takes the lease over (as after a partition): renewals now fail.
    const lease = sim.get("leases", NS, "lost-lease") as Record<string, unknown> & { spec: object };
    sim.update("leases", {
      ...lease,
      spec: { ...lease.spec, holderIdentity: "y", renewTime: microTime(Date.now() + 60_000) },
    });
    await expect(e.lost).resolves.toMatch(/deadline/);
    expect(e.isLeader).toBe(false);
    await e.release();
  });
});

import { request } from "node:https";
import {
  ApiException,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  type KubernetesObject,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentRun, GROUP, job, PLURAL, VERSION, waitFor } from "./fixtures.ts";
import { type KubeSim, startKubeSim } from "./index.ts";

// biome-ignore lint/suspicious/noExplicitAny: tests poke at untyped custom objects and Status bodies
type Obj = Record<string, any>;
const NS = "agentfactory";
let sim: KubeSim;
let kc: KubeConfig;
let custom: CustomObjectsApi;
let core: CoreV1Api;
let batch: BatchV1Api;

beforeAll(async () => {
  sim = await startKubeSim({ bookmarkIntervalMs: 200 });
  kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfig);
  custom = kc.makeApiClient(CustomObjectsApi);
  core = kc.makeApiClient(CoreV1Api);
  batch = kc.makeApiClient(BatchV1Api);
});
afterAll(async () => {
  await sim?.stop();
});

const ar = (name: string) => ({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, name });

async function apiError(p: Promise<unknown>): Promise<{ code: number; status: Obj }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiException) {
      return { code: e.code, status: typeof e.body === "string" ? JSON.parse(e.body) : e.body };
    }
    throw e;
  }
  throw new Error("expected the request to fail");
}

/** A raw request, for what client-node does not expose (watch streams, bad tokens). */
function raw(path: string, opts: { token?: string; accept?: string } = {}): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${sim.url}${path}`,
      {
        ca: sim.caCert,
        headers: { authorization: `Bearer ${opts.token ?? sim.token}`, accept: opts.accept ?? "application/json" },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => {
          body += c;
        });
        res.on("end", () => resolve({ code: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("CRUD over client-node", () => {
  it("creates, gets, lists by selector, and reports AlreadyExists as a Status", async () => {
    const created = (await custom.createNamespacedCustomObject({
      ...ar(""),
      body: agentRun("crud-1", { labels: { team: "a" } }),
    })) as Obj;
    expect(created.metadata.uid).toMatch(/[0-9a-f-]{36}/);
    expect(created.metadata.generation).toBe(1);
    expect(Number(created.metadata.resourceVersion)).toBeGreaterThan(0);
    await custom.createNamespacedCustomObject({ ...ar(""), body: agentRun("crud-2", { labels: { team: "b" } }) });

    const got = (await custom.getNamespacedCustomObject(ar("crud-1"))) as Obj;
    expect(got.spec.ticket.repo).toBe("acme/widgets");

    const byLabel = (await custom.listNamespacedCustomObject({ ...ar(""), labelSelector: "team=b" })) as Obj;
    expect(byLabel.items.map((i: Obj) => i.metadata.name)).toEqual(["crud-2"]);
    const byField = (await custom.listNamespacedCustomObject({
      ...ar(""),
      fieldSelector: "metadata.name=crud-1",
    })) as Obj;
    expect(byField.items.map((i: Obj) => i.metadata.name)).toEqual(["crud-1"]);
    expect(byField.metadata.resourceVersion).toBe(String(sim.store.rv));

    const dup = await apiError(custom.createNamespacedCustomObject({ ...ar(""), body: agentRun("crud-1") }));
    expect(dup.code).toBe(409);
    expect(dup.status).toMatchObject({ kind: "Status", status: "Failure", reason: "AlreadyExists", code: 409 });
    expect(dup.status.message).toBe('agentruns.agentfactory.dev "crud-1" already exists');

    const missing = await apiError(custom.getNamespacedCustomObject(ar("nope")));
    expect(missing.code).toBe(404);
    expect(missing.status.reason).toBe("NotFound");
    expect(sim.count("create", "agentruns")).toBeGreaterThanOrEqual(3);
  });

  it("rejects a replace with a stale resourceVersion with 409 Conflict", async () => {
    const a = (await custom.createNamespacedCustomObject({ ...ar(""), body: agentRun("conflict-1") })) as Obj;
    const first = structuredClone(a);
    first.spec.budgetUsd = 7;
    const replaced = (await custom.replaceNamespacedCustomObject({ ...ar("conflict-1"), body: first })) as Obj;
    expect(replaced.spec.budgetUsd).toBe(7);
    const stale = structuredClone(a);
    stale.spec.budgetUsd = 9;
    const err = await apiError(custom.replaceNamespacedCustomObject({ ...ar("conflict-1"), body: stale }));
    expect(err.code).toBe(409);
    expect(err.status.reason).toBe("Conflict");
    expect(err.status.message).toContain("the object has been modified");
  });

  it("applies schema defaults and rejects an invalid AgentRun with 422 listing the fields", async () => {
    const created = (await custom.createNamespacedCustomObject({ ...ar(""), body: agentRun("defaults-1") })) as Obj;
    expect(created.spec).toMatchObject({
      budgetUsd: 5,
      maxRemediationRounds: 2,
      stageTimeoutSeconds: 1800,
      suspend: false,
    });
    expect(created.spec.model.provider).toBe("anthropic");

    const bad = agentRun("invalid-1") as Obj;
    bad.spec.ticket.repo = "not a repo";
    delete bad.spec.ticket.title;
    bad.spec.maxRemediationRounds = 9;
    const err = await apiError(custom.createNamespacedCustomObject({ ...ar(""), body: bad }));
    expect(err.code).toBe(422);
    expect(err.status.reason).toBe("Invalid");
    const fields = err.status.details.causes.map((c: Obj) => c.field).sort();
    expect(fields).toEqual(["spec.maxRemediationRounds", "spec.ticket.repo", "spec.ticket.title"]);
    expect(err.status.message).toMatch(/^AgentRun.agentfactory.dev "invalid-1" is invalid: \[/);

    const badStatus = await apiError(
      custom.patchNamespacedCustomObjectStatus(
        { ...ar("defaults-1"), body: { status: { phase: "Dancing" } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      ),
    );
    expect(badStatus.code).toBe(422);
    expect(badStatus.status.details.causes[0].field).toBe("status.phase");
  });

  it("prunes fields the schema does not declare", async () => {
    const body = agentRun("prune-1") as Obj;
    body.spec.unknownField = "dropped";
    const created = (await custom.createNamespacedCustomObject({ ...ar(""), body })) as Obj;
    expect(created.spec.unknownField).toBeUndefined();
  });
});

describe("status subresource", () => {
  it("keeps spec and status writes apart and moves generation only on spec changes", async () => {
    const body = agentRun("status-1") as Obj;
    body.status = { phase: "Ready" };
    const created = (await custom.createNamespacedCustomObject({ ...ar(""), body })) as Obj;
    expect(created.status).toBeUndefined();

    const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
    const withStatus = (await custom.patchNamespacedCustomObjectStatus(
      { ...ar("status-1"), body: { status: { phase: "Triaging", observedGeneration: 1 }, spec: { budgetUsd: 99 } } },
      merge,
    )) as Obj;
    expect(withStatus.status.phase).toBe("Triaging");
    expect(withStatus.spec.budgetUsd).toBe(5);
    expect(withStatus.metadata.generation).toBe(1);

    const specWrite = (await custom.patchNamespacedCustomObject(
      { ...ar("status-1"), body: { spec: { budgetUsd: 8 }, status: { phase: "Failed" } } },
      merge,
    )) as Obj;
    expect(specWrite.spec.budgetUsd).toBe(8);
    expect(specWrite.status.phase).toBe("Triaging");
    expect(specWrite.metadata.generation).toBe(2);

    const replaceStatus = structuredClone(specWrite);
    replaceStatus.status.phase = "Writing";
    const replaced = (await custom.replaceNamespacedCustomObjectStatus({
      ...ar("status-1"),
      body: replaceStatus,
    })) as Obj;
    expect(replaced.status.phase).toBe("Writing");
    expect(replaced.metadata.generation).toBe(2);

    // A write that changes nothing keeps the resourceVersion (no event).
    const again = (await custom.replaceNamespacedCustomObjectStatus({ ...ar("status-1"), body: replaced })) as Obj;
    expect(again.metadata.resourceVersion).toBe(replaced.metadata.resourceVersion);
  });
});

describe("finalizers", () => {
  it("keeps a deleted object with a deletionTimestamp until its last finalizer is removed", async () => {
    const body = agentRun("final-1") as Obj;
    body.metadata.finalizers = ["agentfactory.dev/finalize"];
    await custom.createNamespacedCustomObject({ ...ar(""), body });
    await custom.deleteNamespacedCustomObject(ar("final-1"));
    const terminating = (await custom.getNamespacedCustomObject(ar("final-1"))) as Obj;
    expect(terminating.metadata.deletionTimestamp).toBeTruthy();
    expect(terminating.metadata.generation).toBe(2);
    await custom.patchNamespacedCustomObject(
      { ...ar("final-1"), body: { metadata: { finalizers: null } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    expect((await apiError(custom.getNamespacedCustomObject(ar("final-1")))).code).toBe(404);
  });
});

describe("patch types", () => {
  it("supports JSON patch, server-side apply (fieldManager required) and rejects strategic merge on CRDs", async () => {
    await custom.createNamespacedCustomObject({ ...ar(""), body: agentRun("patch-1") });
    const jp = (await custom.patchNamespacedCustomObject(
      { ...ar("patch-1"), body: [{ op: "replace", path: "/spec/budgetUsd", value: 3 }] },
      setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
    )) as Obj;
    expect(jp.spec.budgetUsd).toBe(3);

    const apply = setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply);
    const noManager = await apiError(
      custom.patchNamespacedCustomObject({ ...ar("patch-1"), body: { spec: { budgetUsd: 4 } } }, apply),
    );
    expect(noManager.code).toBe(422);
    const applied = (await custom.patchNamespacedCustomObject(
      {
        ...ar("patch-1"),
        fieldManager: "test",
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: "AgentRun",
          metadata: { name: "patch-1" },
          spec: { budgetUsd: 4 },
        },
      },
      apply,
    )) as Obj;
    expect(applied.spec.budgetUsd).toBe(4);
    const createdByApply = (await custom.patchNamespacedCustomObject(
      { ...ar("patch-2"), fieldManager: "test", body: agentRun("patch-2") },
      apply,
    )) as Obj;
    expect(createdByApply.metadata.uid).toBeTruthy();

    const smp = await apiError(
      custom.patchNamespacedCustomObject(
        { ...ar("patch-1"), body: { spec: { budgetUsd: 2 } } },
        setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
      ),
    );
    expect(smp.code).toBe(415);
  });

  it("merges built-in lists by key under strategic merge patch", async () => {
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: "smp-1", labels: { a: "1" } }, stringData: { k: "v" } },
    });
    const patched = await core.patchNamespacedSecret(
      { name: "smp-1", namespace: NS, body: { metadata: { labels: { b: "2" } } } },
      setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
    );
    expect(patched.metadata?.labels).toEqual({ a: "1", b: "2" });
    expect(patched.data?.k).toBe(Buffer.from("v").toString("base64"));
  });
});

describe("ownerReference garbage collection", () => {
  it("deletes Jobs owned by a deleted AgentRun and Pods owned by those Jobs; orphans Pods of a Job deleted without a policy", async () => {
    const run = (await custom.createNamespacedCustomObject({ ...ar(""), body: agentRun("gc-1") })) as Obj;
    const owner = (o: Obj, kind: string) => [
      {
        apiVersion: o.apiVersion,
        kind,
        name: o.metadata.name,
        uid: o.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ];
    const j = await batch.createNamespacedJob({
      namespace: NS,
      body: {
        ...job("gc-1-triage-1"),
        metadata: { name: "gc-1-triage-1", ownerReferences: owner(run, "AgentRun") },
      } as never,
    });
    expect(j.spec?.template.metadata?.labels?.["job-name"]).toBe("gc-1-triage-1");
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: {
          name: "gc-1-triage-1-abcde",
          ownerReferences: owner({ ...j, apiVersion: "batch/v1" }, "Job") as never,
        },
        spec: { containers: [{ name: "c", image: "x" }] },
      },
    });
    await custom.deleteNamespacedCustomObject(ar("gc-1"));
    await waitFor(
      () => !sim.get("jobs", NS, "gc-1-triage-1") && !sim.get("pods", NS, "gc-1-triage-1-abcde"),
      "GC of job and pod",
    );

    const lone = await batch.createNamespacedJob({ namespace: NS, body: job("orphan-1") as never });
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: {
          name: "orphan-1-abcde",
          ownerReferences: owner({ ...lone, apiVersion: "batch/v1" }, "Job") as never,
        },
        spec: { containers: [{ name: "c", image: "x" }] },
      },
    });
    await batch.deleteNamespacedJob({ name: "orphan-1", namespace: NS });
    const pod = sim.get("pods", NS, "orphan-1-abcde") as Obj;
    expect(pod.metadata.ownerReferences).toBeUndefined();
  });

  it("rejects an invalid Job (name over 63 characters, restartPolicy Always)", async () => {
    const body = job("x".repeat(64)) as Obj;
    body.spec.template.spec.restartPolicy = "Always";
    const err = await apiError(batch.createNamespacedJob({ namespace: NS, body: body as never }));
    expect(err.code).toBe(422);
    expect(err.status.details.causes.map((c: Obj) => c.field).sort()).toEqual([
      "metadata.name",
      "spec.template.spec.restartPolicy",
    ]);
  });
});

describe("leases and events", () => {
  it("gives leases optimistic concurrency", async () => {
    const api = kc.makeApiClient(CoordinationV1Api);
    const l = await api.createNamespacedLease({
      namespace: NS,
      body: { metadata: { name: "agentfactory-operator" }, spec: { holderIdentity: "a", leaseDurationSeconds: 15 } },
    });
    const mine = structuredClone(l);
    mine.spec!.holderIdentity = "b";
    await api.replaceNamespacedLease({ name: "agentfactory-operator", namespace: NS, body: mine });
    const theirs = structuredClone(l);
    theirs.spec!.holderIdentity = "c";
    const err = await apiError(
      api.replaceNamespacedLease({ name: "agentfactory-operator", namespace: NS, body: theirs }),
    );
    expect(err.code).toBe(409);
  });

  it("stores core/v1 and events.k8s.io/v1 events together and filters on involvedObject", async () => {
    await core.createNamespacedEvent({
      namespace: NS,
      body: {
        metadata: { name: "ev-1.1" },
        involvedObject: { kind: "AgentRun", name: "ev-run", namespace: NS, uid: "u-1" },
        reason: "JobCreated",
        message: "created job ev-run-triage-1",
        type: "Normal",
      },
    });
    await kc.makeApiClient(EventsV1Api).createNamespacedEvent({
      namespace: NS,
      body: {
        metadata: { name: "ev-1.2" },
        eventTime: new Date() as never,
        regarding: { kind: "AgentRun", name: "ev-run", namespace: NS, uid: "u-1" },
        reason: "StageSucceeded",
        note: "triage succeeded",
        type: "Normal",
        action: "Reconcile",
        reportingController: "agentfactory.dev/operator",
        reportingInstance: "op-1",
      },
    });
    const list = await core.listNamespacedEvent({
      namespace: NS,
      fieldSelector: "involvedObject.name=ev-run,involvedObject.namespace=agentfactory,involvedObject.uid=u-1",
    });
    expect(list.items.map((e) => e.message).sort()).toEqual(["created job ev-run-triage-1", "triage succeeded"]);
    const none = await core.listNamespacedEvent({ namespace: NS, fieldSelector: "involvedObject.name=other" });
    expect(none.items).toHaveLength(0);
  });
});

describe("auth and discovery", () => {
  it("answers 401 without the kubeconfig's token, and serves aggregated discovery when asked", async () => {
    const denied = await raw("/api/v1/namespaces", { token: "wrong" });
    expect(denied.code).toBe(401);
    expect(JSON.parse(denied.body).reason).toBe("Unauthorized");
    const agg = JSON.parse(
      (await raw("/apis", { accept: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList" })).body,
    );
    expect(agg.kind).toBe("APIGroupDiscoveryList");
    const afGroup = agg.items.find((g: Obj) => g.metadata.name === GROUP);
    expect(afGroup.versions[0].resources[0]).toMatchObject({
      resource: "agentruns",
      shortNames: ["ar"],
      scope: "Namespaced",
    });
    const legacy = JSON.parse((await raw(`/apis/${GROUP}/${VERSION}`)).body);
    expect(legacy.resources.map((r: Obj) => r.name)).toEqual(["agentruns", "agentruns/status"]);
  });
});

describe("watch", () => {
  it("sends 410 Gone as an ERROR event when resuming from a compacted resourceVersion", async () => {
    const rv = sim.store.rv;
    await custom.createNamespacedCustomObject({ ...ar(""), body: agentRun("watch-gone") });
    sim.compact();
    const res = await raw(`/apis/${GROUP}/${VERSION}/namespaces/${NS}/${PLURAL}?watch=true&resourceVersion=${rv}`);
    const event = JSON.parse(res.body.trim());
    expect(event.type).toBe("ERROR");
    expect(event.object).toMatchObject({ kind: "Status", code: 410, reason: "Expired" });
  });

  it("replays events since a resourceVersion, sends bookmarks and ends at timeoutSeconds", async () => {
    const rv = sim.store.rv;
    await custom.createNamespacedCustomObject({ ...ar(""), body: agentRun("watch-replay") });
    await custom.deleteNamespacedCustomObject(ar("watch-replay"));
    const res = await raw(
      `/apis/${GROUP}/${VERSION}/namespaces/${NS}/${PLURAL}?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true&timeoutSeconds=1`,
    );
    const events = res.body
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(events.slice(0, 2).map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      "ADDED watch-replay",
      "DELETED watch-replay",
    ]);
    expect(events.some((e) => e.type === "BOOKMARK")).toBe(true);
  });
});

describe("informer", () => {
  it("delivers add/update/delete and recovers from 410 by relisting", async () => {
    const path = `/apis/${GROUP}/${VERSION}/namespaces/${NS}/${PLURAL}`;
    const informer = makeInformer<KubernetesObject & Obj>(
      kc,
      path,
      () => custom.listNamespacedCustomObject({ ...ar(""), labelSelector: "informer=yes" }) as never,
      "informer=yes",
    );
    const seen: string[] = [];
    informer.on("add", (o) => seen.push(`add ${o.metadata?.name}`));
    informer.on("update", (o) => seen.push(`update ${o.metadata?.name} ${o.spec.budgetUsd}`));
    informer.on("delete", (o) => seen.push(`delete ${o.metadata?.name}`));
    const errors: unknown[] = [];
    informer.on("error", (e) => errors.push(e));
    await informer.start();
    try {
      const labels = { informer: "yes" };
      await custom.createNamespacedCustomObject({ ...ar(""), body: agentRun("inf-1", { labels }) });
      await waitFor(() => seen.includes("add inf-1"), "add event");
      await custom.patchNamespacedCustomObject(
        { ...ar("inf-1"), body: { spec: { budgetUsd: 6 } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      await waitFor(() => seen.includes("update inf-1 6"), "update event");
      await custom.deleteNamespacedCustomObject(ar("inf-1"));
      await waitFor(() => seen.includes("delete inf-1"), "delete event");

      // The watch falls behind: history compacted, stream closed. The informer must get 410 and relist.
      // An unrelated write moves the resourceVersion past the informer's, then the history is compacted.
      await custom.createNamespacedCustomObject({ ...ar(""), body: agentRun("inf-unrelated") });
      const listsBefore = sim.count("list", "agentruns");
      sim.compact();
      sim.closeWatches();
      await custom.createNamespacedCustomObject({ ...ar(""), body: agentRun("inf-2", { labels }) });
      await waitFor(() => seen.includes("add inf-2"), "add after relist");
      expect(sim.count("list", "agentruns")).toBeGreaterThan(listsBefore);
      expect(informer.get("inf-2", NS)).toBeTruthy();
      expect(errors).toEqual([]);
    } finally {
      await informer.stop();
    }
  });
});

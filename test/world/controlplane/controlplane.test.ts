/**
 * The real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler from .cache/bin) and the
 * world's kubelet on it (process mode, `sh -c <args>` per container): the real Job controller, scheduler,
 * PodSecurity admission and Node authorizer act on what the kubelet reports. Multi-container pods shaped like a
 * stage pod (init container, native sidecar, main container on a shared emptyDir) are reported field by field as a
 * real kubelet does: initContainerStatuses, started/ready, restarts, the Initialized/Ready/ContainersReady conditions.
 */
import { writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatchV1Api, CoreV1Api, type V1Job, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PooledKubeConfig, statusCode } from "../../../operator/kube/client.ts";
import { type ApiKubelet, startApiKubelet } from "../kube/api-kubelet.ts";
import { waitUntil } from "./cluster.ts";
import { type ControlPlane, startControlPlane } from "./controlplane.ts";
import { httpsGet } from "./processes.ts";

const NS = "kubelet-test";
let cp: ControlPlane;
let kubelet: ApiKubelet;
let core: CoreV1Api;
let batch: BatchV1Api;

/** A container that passes Pod Security "restricted"; `script` runs under sh -c. */
function podSpec(script: string, extra: Record<string, unknown> = {}) {
  return {
    restartPolicy: "Never",
    automountServiceAccountToken: false,
    securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } },
    containers: [
      {
        name: "main",
        image: "localhost/none:test",
        args: [script],
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
      },
    ],
    ...extra,
  } as V1Pod["spec"];
}

async function job(name: string, script: string): Promise<V1Job> {
  return batch.createNamespacedJob({
    namespace: NS,
    body: { metadata: { name }, spec: { backoffLimit: 0, template: { spec: podSpec(script) } } },
  });
}

async function jobPod(jobName: string): Promise<V1Pod> {
  return waitUntil(`a pod of Job ${jobName}`, async () => {
    const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: `job-name=${jobName}` });
    return pods.items[0];
  });
}

async function jobCondition(name: string): Promise<{ type: string; reason?: string }> {
  return waitUntil(
    `Job ${name} to finish`,
    async () => {
      const j = await batch.readNamespacedJob({ name, namespace: NS });
      return (j.status?.conditions ?? []).find(
        (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
      );
    },
    60_000,
  );
}

/**
 * A stage-shaped pod (process mode, `sh -c` per container): an optional init container `prepare`, the native
 * sidecar `sandbox` and the regular container `main` share the emptyDir /shared ($SHARED).
 */
function multiPodSpec(scripts: { init?: string; sidecar: string; main: string }): V1Pod["spec"] {
  const base = podSpec(scripts.main)!;
  const shared = {
    env: [{ name: "SHARED", value: "/shared" }],
    volumeMounts: [{ name: "shared", mountPath: "/shared" }],
  };
  const container = (name: string, script: string) => ({ ...base.containers[0]!, name, args: [script], ...shared });
  return {
    ...base,
    initContainers: [
      ...(scripts.init ? [container("prepare", scripts.init)] : []),
      { ...container("sandbox", scripts.sidecar), restartPolicy: "Always" },
    ],
    containers: [container("main", scripts.main)],
    volumes: [{ name: "shared", emptyDir: {} }],
  };
}

const byName = <T extends { name: string }>(list: T[] | undefined) =>
  Object.fromEntries((list ?? []).map((x) => [x.name, x])) as Record<string, T>;
const conditions = (pod: V1Pod) =>
  Object.fromEntries(
    (pod.status?.conditions ?? []).map((c) => [c.type, { status: c.status, reason: c.reason, message: c.message }]),
  );
const readPod = (name: string) => core.readNamespacedPod({ name, namespace: NS });
const waitFile = (name: string) => `while [ ! -f "$SHARED/${name}" ]; do sleep 0.05; done`;

beforeAll(async () => {
  cp = await startControlPlane();
  kubelet = await startApiKubelet({ cp, mode: "process", processCommand: ["/bin/sh", "-c"] });
  const kc = new PooledKubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  batch = kc.makeApiClient(BatchV1Api);
  await core.createNamespace({
    body: { metadata: { name: NS, labels: { "pod-security.kubernetes.io/enforce": "restricted" } } },
  });
  await waitUntil(
    "the default ServiceAccount",
    async () => (await core.readNamespacedServiceAccount({ name: "default", namespace: NS })).metadata?.name,
  );
  await waitUntil("the node to be schedulable", async () => {
    const node = await core.readNode({ name: cp.nodeName });
    return !(node.spec?.taints ?? []).some((t) => t.effect === "NoSchedule");
  });
}, 180_000);

afterAll(async () => {
  await kubelet?.stop();
  await cp?.stop();
});

describe("the real control plane", () => {
  it("serves the pinned kube-apiserver release, with anonymous requests refused", async () => {
    expect(cp.version).toBe("v1.34.4");
    expect(cp.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const anonymous = await httpsGet(`${cp.url}/api/v1/namespaces/${NS}/pods`, { ca: cp.pki.ca });
    expect(anonymous.status).toBe(403);
    const node = await core.readNode({ name: cp.nodeName });
    expect(node.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
  });

  it("runs a Job's pod to completion: exit 0, reason Completed, the termination message, the Job Complete", async () => {
    await job("ok", 'echo hello; printf \'{"done":true}\' > "$AGENTFACTORY_TERMINATION_LOG"');
    expect((await jobCondition("ok")).type).toBe("Complete");
    const pod = await jobPod("ok");
    expect(pod.spec?.nodeName).toBe(cp.nodeName); // bound by the real scheduler
    expect(pod.status?.phase).toBe("Succeeded");
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
    expect(terminated).toMatchObject({ exitCode: 0, reason: "Completed", message: '{"done":true}' });
    expect(kubelet.logs(NS, pod.metadata!.name!)).toBe("hello\n");
    // kubectl logs goes through the API server to the kubelet's log endpoint.
    const log = await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace: NS });
    expect(log).toBe("hello\n");
  }, 90_000);

  it("reports a failing container (exit 3, reason Error) and the Job controller fails the Job", async () => {
    await job("fails", "echo broken >&2; exit 3");
    expect(await jobCondition("fails")).toMatchObject({ type: "Failed", reason: "BackoffLimitExceeded" });
    const pod = await jobPod("fails");
    expect(pod.status?.phase).toBe("Failed");
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 3, reason: "Error" });
  }, 90_000);

  it("refuses a pod that breaks Pod Security restricted (real admission)", async () => {
    const err = await core
      .createNamespacedPod({
        namespace: NS,
        body: { metadata: { name: "root" }, spec: { containers: [{ name: "main", image: "x", args: ["true"] }] } },
      })
      .then(
        () => undefined,
        (e) => e as { code?: number; body?: string },
      );
    expect(statusCode(err)).toBe(403);
    const status = JSON.parse(String(err?.body)) as { reason: string; message: string };
    expect(status.reason).toBe("Forbidden");
    expect(status.message).toContain('violates PodSecurity "restricted:latest"');
  });

  it("honours the deletion grace period: SIGTERM first, SIGKILL when it runs out, then the pod is removed", async () => {
    const stubborn = await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "stubborn" },
        spec: podSpec("trap 'echo got TERM' TERM; echo up; while :; do sleep 0.2; done"),
      },
    });
    const polite = await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "polite" },
        spec: podSpec("trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.2; done"),
      },
    });
    for (const name of ["stubborn", "polite"])
      await waitUntil(`${name} running`, async () => kubelet.logs(NS, name)?.includes("up"));
    await core.deleteNamespacedPod({ name: "stubborn", namespace: NS, gracePeriodSeconds: 2 });
    await core.deleteNamespacedPod({ name: "polite", namespace: NS, gracePeriodSeconds: 30 });
    for (const name of ["stubborn", "polite"])
      await waitUntil(
        `${name} removed`,
        async () =>
          core.readNamespacedPod({ name, namespace: NS }).then(
            () => false,
            (e) => statusCode(e) === 404,
          ),
        40_000,
      );
    const runs = kubelet.pods();
    const s = runs.find((p) => p.uid === stubborn.metadata?.uid)!;
    const p = runs.find((r) => r.uid === polite.metadata?.uid)!;
    expect(s).toMatchObject({ deletionGraceSeconds: 2, signals: ["SIGTERM", "SIGKILL"], exitCode: 137 });
    expect(kubelet.logs(NS, "stubborn")).toContain("got TERM");
    // The polite one exits on SIGTERM, long before its 30 s grace ends: no SIGKILL.
    expect(p).toMatchObject({ deletionGraceSeconds: 30, signals: ["SIGTERM"], exitCode: 0 });
    expect(kubelet.logs(NS, "polite")).toContain("bye");
  }, 90_000);

  it("waits in CreateContainerConfigError while a referenced Secret is missing, and runs once it exists", async () => {
    const spec = podSpec('echo "token=$TOKEN"');
    spec!.containers[0]!.env = [{ name: "TOKEN", valueFrom: { secretKeyRef: { name: "later", key: "token" } } }];
    await core.createNamespacedPod({ namespace: NS, body: { metadata: { name: "needs-secret" }, spec } });
    const waiting = await waitUntil("CreateContainerConfigError", async () => {
      const pod = await core.readNamespacedPod({ name: "needs-secret", namespace: NS });
      return pod.status?.containerStatuses?.[0]?.state?.waiting?.reason === "CreateContainerConfigError" && pod;
    });
    expect(waiting.status?.phase).toBe("Pending");
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: "later" }, stringData: { token: "s3cret" } },
    });
    await waitUntil(
      "the pod to succeed",
      async () => (await core.readNamespacedPod({ name: "needs-secret", namespace: NS })).status?.phase === "Succeeded",
      30_000,
    );
    expect(kubelet.logs(NS, "needs-secret")).toBe("token=s3cret\n");
  }, 60_000);

  it("runs init container, sidecar and main container in order on a shared emptyDir, and reports each as a kubelet does", async () => {
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "multi" },
        spec: multiPodSpec({
          init: `echo preparing; ${waitFile("go-init")}; echo prepared > "$SHARED/init.txt"`,
          sidecar: `trap 'echo stopping; exit 0' TERM; echo up > "$SHARED/sidecar.txt"; echo sidecar up; while :; do sleep 0.1; done`,
          main: `${waitFile("go")}; printf '{"init":"%s","sidecar":"%s"}' "$(cat "$SHARED/init.txt")" "$(cat "$SHARED/sidecar.txt")" > "$AGENTFACTORY_TERMINATION_LOG"; echo main done`,
        }),
      },
    });
    const shared = await waitUntil(
      "the volumes set up",
      async () => kubelet.pods().find((p) => p.name === "multi")?.mounts["/shared"],
    );

    // The init container runs: the sidecar and the main container wait.
    const initializing = await waitUntil("the init container running", async () => {
      const pod = await readPod("multi");
      return byName(pod.status?.initContainerStatuses).prepare?.state?.running && pod;
    });
    expect(initializing.status?.phase).toBe("Pending");
    const early = byName(initializing.status?.initContainerStatuses);
    expect(early.prepare).toMatchObject({ started: true, ready: false, restartCount: 0 });
    expect(early.sandbox).toMatchObject({
      started: false,
      ready: false,
      state: { waiting: { reason: "PodInitializing" } },
    });
    expect(initializing.status?.containerStatuses?.[0]).toMatchObject({
      name: "main",
      ready: false,
      started: false,
      state: { waiting: { reason: "PodInitializing" } },
    });
    expect(conditions(initializing)).toMatchObject({
      PodReadyToStartContainers: { status: "True" },
      Initialized: {
        status: "False",
        reason: "ContainersNotInitialized",
        message: "containers with incomplete status: [prepare sandbox]",
      },
      ContainersReady: {
        status: "False",
        reason: "ContainersNotReady",
        message: "containers with unready status: [sandbox main]",
      },
      Ready: { status: "False", reason: "ContainersNotReady" },
      PodScheduled: { status: "True" },
    });

    // The init container completes: the sidecar starts, then the main container; all ready.
    writeFileSync(join(shared, "go-init"), "");
    const running = await waitUntil("the pod ready", async () => {
      const pod = await readPod("multi");
      return conditions(pod).Ready?.status === "True" && pod;
    });
    expect(running.status?.phase).toBe("Running");
    const inits = byName(running.status?.initContainerStatuses);
    expect(inits.prepare).toMatchObject({
      started: false,
      ready: true,
      state: { terminated: { exitCode: 0, reason: "Completed" } },
    });
    expect(inits.sandbox).toMatchObject({ started: true, ready: true, restartCount: 0 });
    expect(inits.sandbox?.state?.running?.startedAt).toBeTruthy();
    expect(running.status?.containerStatuses?.[0]).toMatchObject({ name: "main", started: true, ready: true });
    expect(running.status?.containerStatuses?.[0]?.containerID).toMatch(/^process:\/\/\d+$/);
    expect(conditions(running)).toMatchObject({
      Initialized: { status: "True" },
      ContainersReady: { status: "True" },
      Ready: { status: "True" },
    });

    // The main container ends: the sidecar is stopped, then the pod is Succeeded.
    writeFileSync(join(shared, "go"), "");
    const done = await waitUntil("the pod to succeed", async () => {
      const pod = await readPod("multi");
      return pod.status?.phase === "Succeeded" && pod;
    });
    const main = done.status?.containerStatuses?.[0];
    expect(main).toMatchObject({
      name: "main",
      ready: false,
      started: false,
      state: { terminated: { exitCode: 0, reason: "Completed" } },
    });
    expect(JSON.parse(main?.state?.terminated?.message ?? "")).toEqual({ init: "prepared", sidecar: "up" });
    const after = byName(done.status?.initContainerStatuses);
    expect(after.sandbox).toMatchObject({
      ready: false,
      started: false,
      state: { terminated: { exitCode: 0, reason: "Completed" } },
    });
    expect(conditions(done)).toMatchObject({
      Initialized: { status: "True", reason: "PodCompleted" },
      ContainersReady: { status: "False", reason: "PodCompleted" },
      Ready: { status: "False", reason: "PodCompleted" },
    });
    const run = kubelet.pods().find((p) => p.name === "multi")!;
    expect(run.containers.map((c) => [c.name, c.kind, c.exitCode, c.signals])).toEqual([
      ["prepare", "init", 0, []],
      ["sandbox", "sidecar", 0, ["SIGTERM"]],
      ["main", "main", 0, []],
    ]);
    // Logs per container through the API server; without a container, the pod's only regular one.
    // (sh reports its `sleep` killed by the SIGTERM as "Terminated" in between.)
    expect(await core.readNamespacedPodLog({ name: "multi", namespace: NS, container: "sandbox" })).toMatch(
      /^sidecar up\n(Terminated\n)?stopping\n$/,
    );
    expect(await core.readNamespacedPodLog({ name: "multi", namespace: NS, container: "prepare" })).toBe("preparing\n");
    expect(await core.readNamespacedPodLog({ name: "multi", namespace: NS })).toBe("main done\n");
  }, 90_000);

  it("restarts a sidecar that exits while the pod runs, with CrashLoopBackOff's restartCount and lastState", async () => {
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "restarts" },
        spec: multiPodSpec({
          sidecar: `n=$(cat "$SHARED/runs" 2>/dev/null || echo 0); echo $((n + 1)) > "$SHARED/runs"; if [ "$n" = 0 ]; then echo crash >&2; exit 3; fi; trap 'exit 0' TERM; echo up > "$SHARED/sidecar.txt"; while :; do sleep 0.1; done`,
          main: `${waitFile("sidecar.txt")}; cat "$SHARED/runs" > "$AGENTFACTORY_TERMINATION_LOG"`,
        }),
      },
    });
    const done = await waitUntil("the pod to succeed", async () => {
      const pod = await readPod("restarts");
      return pod.status?.phase === "Succeeded" && pod;
    });
    expect(done.status?.containerStatuses?.[0]?.state?.terminated?.message?.trim()).toBe("2");
    const sandbox = done.status?.initContainerStatuses?.[0];
    expect(sandbox).toMatchObject({ name: "sandbox", restartCount: 1, state: { terminated: { exitCode: 0 } } });
    expect(sandbox?.lastState?.terminated).toMatchObject({ exitCode: 3, reason: "Error" });
  }, 60_000);

  it("fails the pod when an init container fails, without starting the sidecar or the main container", async () => {
    await batch.createNamespacedJob({
      namespace: NS,
      body: {
        metadata: { name: "init-fails" },
        spec: {
          backoffLimit: 0,
          template: {
            spec: multiPodSpec({ init: "echo cannot >&2; exit 4", sidecar: "sleep 60", main: "echo never" }),
          },
        },
      },
    });
    expect(await jobCondition("init-fails")).toMatchObject({ type: "Failed", reason: "BackoffLimitExceeded" });
    const pod = await jobPod("init-fails");
    expect(pod.status?.phase).toBe("Failed");
    const inits = byName(pod.status?.initContainerStatuses);
    expect(inits.prepare?.state?.terminated).toMatchObject({ exitCode: 4, reason: "Error" });
    expect(inits.sandbox?.state?.waiting?.reason).toBe("PodInitializing");
    expect(pod.status?.containerStatuses?.[0]?.state?.waiting?.reason).toBe("PodInitializing");
    expect(conditions(pod)).toMatchObject({
      Initialized: {
        status: "False",
        reason: "ContainersNotInitialized",
        message: "containers with incomplete status: [prepare sandbox]",
      },
      Ready: { status: "False", reason: "PodFailed" },
    });
    const run = kubelet.pods().find((p) => p.name === pod.metadata?.name)!;
    expect(run.containers.map((c) => [c.name, c.pid !== undefined])).toEqual([
      ["prepare", true],
      ["sandbox", false],
      ["main", false],
    ]);
  }, 60_000);

  it("stops a deleted pod's main container first, then its sidecar, and removes the pod", async () => {
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "multi-delete" },
        spec: multiPodSpec({
          sidecar: `trap 'if [ -f "$SHARED/main-stopped" ]; then echo after-main; else echo before-main; fi; exit 0' TERM; echo up; while :; do sleep 0.1; done`,
          main: `trap 'echo > "$SHARED/main-stopped"; exit 0' TERM; echo up; while :; do sleep 0.1; done`,
        }),
      },
    });
    for (const container of ["sandbox", "main"])
      await waitUntil(`${container} up`, async () => kubelet.logs(NS, "multi-delete", container)?.includes("up"));
    await core.deleteNamespacedPod({ name: "multi-delete", namespace: NS, gracePeriodSeconds: 20 });
    await waitUntil(
      "the pod removed",
      async () =>
        readPod("multi-delete").then(
          () => false,
          (e) => statusCode(e) === 404,
        ),
      40_000,
    );
    expect(kubelet.logs(NS, "multi-delete", "sandbox")).toContain("after-main");
    const run = kubelet.pods().find((p) => p.name === "multi-delete")!;
    expect(run).toMatchObject({ deletionGraceSeconds: 20, signals: ["SIGTERM"], exitCode: 0 });
    expect(run.containers.map((c) => [c.name, c.signals])).toEqual([
      ["sandbox", ["SIGTERM"]],
      ["main", ["SIGTERM"]],
    ]);
  }, 60_000);

  it("authorizes the kubelet as its node: Secrets of its own pods only", async () => {
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: "unrelated" }, stringData: { k: "v" } },
    });
    const kc = new PooledKubeConfig();
    kc.loadFromFile(cp.nodeKubeconfigPath);
    const asNode = kc.makeApiClient(CoreV1Api);
    const denied = await asNode.readNamespacedSecret({ name: "unrelated", namespace: NS }).catch((e) => e);
    expect(statusCode(denied)).toBe(403);
    const allowed = await asNode.readNamespacedSecret({ name: "later", namespace: NS }); // needs-secret's
    expect(allowed.metadata?.name).toBe("later");
  });

  it("survives kube-apiserver SIGKILLed and restarted: the kubelet's watch resumes and the next Job completes", async () => {
    const before = cp.pids()["kube-apiserver"];
    await cp.restart("kube-apiserver");
    expect(cp.pids()["kube-apiserver"]).not.toBe(before);
    await job("after-restart", "echo again");
    expect((await jobCondition("after-restart")).type).toBe("Complete");
    const pod = await jobPod("after-restart");
    expect(kubelet.logs(NS, pod.metadata!.name!)).toBe("again\n");
  }, 120_000);

  it("fails with a message saying how to install the control plane when the binaries are missing", async () => {
    const empty = await mkdtemp(join(tmpdir(), "af-no-bins-"));
    await expect(startControlPlane({ binDir: empty })).rejects.toThrow(/missing in .*run `make deps`/);
  });

  it("stops every component cleanly", async () => {
    const pids = Object.values(cp.pids());
    expect(pids).toHaveLength(4);
    await kubelet.stop();
    await cp.stop();
    for (const pid of pids) expect(() => process.kill(pid!, 0)).toThrow();
  }, 60_000);
});

/**
 * The real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler from .cache/bin) and the
 * world's kubelet on it (process mode, `sh -c <args>` per container): the real Job controller, scheduler,
 * PodSecurity admission and Node authorizer act on what the kubelet reports.
 */
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

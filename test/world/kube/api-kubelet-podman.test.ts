/**
 * The world's kubelet on the real API server in Podman mode: a memory-limited container that the kernel's OOM
 * killer stops is reported as OOMKilled (exit 137), and a gracefully deleted container gets `podman stop` with the
 * pod's grace period. Runs the runner image (make image) as the container image.
 */
import { BatchV1Api, CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PooledKubeConfig, statusCode } from "../../../operator/kube/client.ts";
import { waitUntil } from "../controlplane/cluster.ts";
import { type ControlPlane, startControlPlane } from "../controlplane/controlplane.ts";
import { RUNNER_IMAGE } from "../podman.ts";
import { type ApiKubelet, startApiKubelet } from "./api-kubelet.ts";
import { assertPodmanReady } from "./kubelet.ts";

const NS = "podman-test";
let cp: ControlPlane;
let kubelet: ApiKubelet;
let core: CoreV1Api;
let batch: BatchV1Api;

function spec(script: string, memory?: string): V1Pod["spec"] {
  return {
    restartPolicy: "Never",
    automountServiceAccountToken: false,
    securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } },
    containers: [
      {
        name: "main",
        image: RUNNER_IMAGE,
        command: ["node", "-e", script],
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
        ...(memory ? { resources: { limits: { memory }, requests: { memory } } } : {}),
      },
    ],
  };
}

beforeAll(async () => {
  await assertPodmanReady();
  cp = await startControlPlane();
  kubelet = await startApiKubelet({ cp, mode: "podman" });
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

describe("the kubelet in Podman mode on the real API server", () => {
  it("reports a container the OOM killer stopped as OOMKilled, and the Job controller fails its Job", async () => {
    const hog = "const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1));";
    await batch.createNamespacedJob({
      namespace: NS,
      body: { metadata: { name: "hog" }, spec: { backoffLimit: 0, template: { spec: spec(hog, "64Mi") } } },
    });
    const pod = await waitUntil(
      "the hog to be killed",
      async () => {
        const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: "job-name=hog" });
        const p = pods.items[0];
        return p?.status?.phase === "Failed" ? p : undefined;
      },
      90_000,
    );
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 137, reason: "OOMKilled" });
    await waitUntil("the Job to fail", async () =>
      (await batch.readNamespacedJob({ name: "hog", namespace: NS })).status?.conditions?.some(
        (c) => c.type === "Failed" && c.status === "True",
      ),
    );
  }, 120_000);

  it("stops a deleted container with its grace period (podman stop), and the pod goes away", async () => {
    const script =
      "process.on('SIGTERM', () => { console.log('terminating'); process.exit(0); }); console.log('up'); setInterval(() => {}, 1000);";
    const created = await core.createNamespacedPod({
      namespace: NS,
      body: { metadata: { name: "graceful" }, spec: spec(script) },
    });
    await waitUntil("the container up", async () => kubelet.logs(NS, "graceful")?.includes("up"), 60_000);
    await core.deleteNamespacedPod({ name: "graceful", namespace: NS, gracePeriodSeconds: 20 });
    await waitUntil(
      "the pod removed",
      async () =>
        core.readNamespacedPod({ name: "graceful", namespace: NS }).then(
          () => false,
          (e) => statusCode(e) === 404,
        ),
      40_000,
    );
    const run = kubelet.pods().find((p) => p.uid === created.metadata?.uid);
    expect(run).toMatchObject({ deletionGraceSeconds: 20, signals: ["SIGTERM"], exitCode: 0 });
    expect(kubelet.logs(NS, "graceful")).toContain("terminating");
  }, 120_000);
});

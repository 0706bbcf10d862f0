/**
 * The world's kubelet on the real API server in Podman mode: a memory-limited container that the kernel's OOM
 * killer stops is reported as OOMKilled (exit 137), a gracefully deleted container gets `podman stop` with the
 * pod's grace period, and a stage-shaped pod (a native sidecar and the main container, each as its own uid, on an
 * emptyDir shared through the pod's fsGroup) runs as two containers reported as a kubelet does. Runs the runner
 * image (make image) as the container image.
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
  it("runs a native sidecar and the main container as their own uids on an fsGroup-shared emptyDir, and reports both", async () => {
    const sidecar = `
      const fs = require("node:fs");
      fs.writeFileSync("/shared/sidecar.json", JSON.stringify({ uid: process.getuid(), gid: process.getgid(), groups: process.getgroups() }));
      console.log("sidecar up");
      process.on("SIGTERM", () => { console.log("sidecar stopping"); process.exit(0); });
      setInterval(() => {}, 1000);`;
    const main = `
      const fs = require("node:fs");
      const check = () => {
        if (!fs.existsSync("/shared/sidecar.json")) return setTimeout(check, 50);
        const dir = fs.statSync("/shared");
        fs.writeFileSync("/dev/termination-log", JSON.stringify({
          main: { uid: process.getuid(), gid: process.getgid() },
          sidecar: JSON.parse(fs.readFileSync("/shared/sidecar.json", "utf8")),
          fileGid: fs.statSync("/shared/sidecar.json").gid,
          dirGid: dir.gid,
          setgid: (dir.mode & 0o2000) !== 0,
        }));
        console.log("main done");
      };
      check();`;
    const base = spec(main)!;
    const ctr = base.containers[0]!;
    const shared = { volumeMounts: [{ name: "shared", mountPath: "/shared" }] };
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "two-uids" },
        spec: {
          ...base,
          securityContext: { ...base.securityContext, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001 },
          initContainers: [
            {
              ...ctr,
              name: "sandbox",
              restartPolicy: "Always",
              command: ["node", "-e", sidecar],
              securityContext: { ...ctr.securityContext, runAsUser: 10002, runAsGroup: 10002 },
              ...shared,
            },
          ],
          containers: [{ ...ctr, ...shared }],
          volumes: [{ name: "shared", emptyDir: {} }],
        },
      },
    });
    const pod = await waitUntil(
      "the pod to succeed",
      async () => {
        const p = await core.readNamespacedPod({ name: "two-uids", namespace: NS });
        return p.status?.phase === "Succeeded" && p;
      },
      90_000,
    );
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
    expect(terminated).toMatchObject({ exitCode: 0, reason: "Completed" });
    const seen = JSON.parse(terminated?.message ?? "");
    expect(seen.main).toEqual({ uid: 10001, gid: 10001 });
    expect(seen.sidecar).toMatchObject({ uid: 10002, gid: 10002 });
    expect(seen.sidecar.groups).toContain(10001); // the pod's fsGroup, as a supplementary group
    // The emptyDir is group-owned by fsGroup with the setgid bit: what the sidecar writes stays the pod's group's.
    expect(seen).toMatchObject({ dirGid: 10001, fileGid: 10001, setgid: true });
    // The sidecar ran as an init container, started before the main container and stopped after it.
    expect(pod.status?.initContainerStatuses).toHaveLength(1);
    const sandbox = pod.status?.initContainerStatuses?.[0];
    expect(sandbox).toMatchObject({ name: "sandbox", ready: false, started: false, restartCount: 0 });
    expect(sandbox?.state?.terminated).toMatchObject({ exitCode: 0, reason: "Completed" });
    expect(sandbox?.containerID).toMatch(/^podman:\/\/\d+$/);
    expect(new Date(sandbox!.state!.terminated!.startedAt!).getTime()).toBeLessThanOrEqual(
      new Date(terminated!.startedAt!).getTime(),
    );
    expect(new Date(sandbox!.state!.terminated!.finishedAt!).getTime()).toBeGreaterThanOrEqual(
      new Date(terminated!.finishedAt!).getTime(),
    );
    const ready = pod.status?.conditions?.find((c) => c.type === "Ready");
    expect(ready).toMatchObject({ status: "False", reason: "PodCompleted" });
    const run = kubelet.pods().find((p) => p.name === "two-uids")!;
    expect(run.containers.map((c) => [c.name, c.kind, c.exitCode, c.signals])).toEqual([
      ["sandbox", "sidecar", 0, ["SIGTERM"]],
      ["main", "main", 0, []],
    ]);
    const log = await core.readNamespacedPodLog({ name: "two-uids", namespace: NS, container: "sandbox" });
    expect(log).toBe("sidecar up\nsidecar stopping\n");
    expect(await core.readNamespacedPodLog({ name: "two-uids", namespace: NS })).toBe("main done\n");
  }, 120_000);
});

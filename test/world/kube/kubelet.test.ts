import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatchV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { job, waitFor } from "./fixtures.ts";
import { type KubeSim, startKubeSim } from "./index.ts";
import { type Kubelet, startKubelet } from "./kubelet.ts";
import { podmanProcessEnv, podmanRunArgs } from "./podman-args.ts";

// biome-ignore lint/suspicious/noExplicitAny: tests read untyped status fields
type Obj = Record<string, any>;
const NS = "agentfactory";

/** A stand-in runner: reports its environment through the termination log, exits with $EXIT_CODE. */
const SCRIPT = `
import { existsSync, writeFileSync, readFileSync } from "node:fs";
const role = process.argv[2];
const shared = process.env.SHARED;
if (role === "init") {
  writeFileSync(shared + "/init.txt", "init ran");
  process.exit(Number(process.env.INIT_EXIT ?? 0));
}
if (role === "sidecar") {
  // Exits once (the kubelet restarts it), then serves until stopped; reports how it was stopped.
  const runs = existsSync(shared + "/sidecar-runs") ? Number(readFileSync(shared + "/sidecar-runs", "utf8")) : 0;
  writeFileSync(shared + "/sidecar-runs", String(runs + 1));
  if (process.env.CRASH_ONCE && runs === 0) process.exit(3);
  writeFileSync(shared + "/sidecar.txt", "sidecar up");
  process.on("SIGTERM", () => {
    writeFileSync(shared + "/sidecar-stopped", "SIGTERM");
    process.exit(0);
  });
  setInterval(() => {}, 1000);
} else if (role === "main2") {
  writeFileSync(process.env.AGENTFACTORY_TERMINATION_LOG, "second main");
} else if (shared) {
  while (!existsSync(shared + "/sidecar.txt")) await new Promise((r) => setTimeout(r, 20));
  const read = (f) => (existsSync(shared + "/" + f) ? readFileSync(shared + "/" + f, "utf8") : null);
  writeFileSync(
    process.env.AGENTFACTORY_TERMINATION_LOG,
    JSON.stringify({ init: read("init.txt"), sidecar: read("sidecar.txt"), runs: read("sidecar-runs") }),
  );
} else {
const ws = process.env.AGENTFACTORY_WORKSPACE;
writeFileSync(ws + "/proof.txt", "written");
console.log("runner starting in", process.env.POD_NAME);
console.error("some stderr");
if (process.env.SLEEP) await new Promise((r) => setTimeout(r, Number(process.env.SLEEP)));
const result = {
  stage: process.env.AGENTFACTORY_STAGE,
  pod: process.env.POD_NAME,
  ns: process.env.POD_NS,
  token: process.env.GITHUB_TOKEN,
  url: process.env.URL,
  workspaceIsTemp: ws !== "/workspace" && readFileSync(ws + "/proof.txt", "utf8") === "written",
  home: process.env.HOME !== "/home/runner",
  extra: process.env.EXTRA,
};
writeFileSync(process.env.AGENTFACTORY_TERMINATION_LOG, JSON.stringify(result));
process.exit(Number(process.env.EXIT_CODE ?? 0));
}
`;

let sim: KubeSim;
let kubelet: Kubelet;
let dir: string;
let batch: BatchV1Api;
let core: CoreV1Api;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kubelet-test-"));
  const script = join(dir, "runner.mjs");
  await writeFile(script, SCRIPT);
  sim = await startKubeSim();
  kubelet = startKubelet({
    sim,
    mode: "process",
    processCommand: [process.execPath, script],
    extraEnv: { EXTRA: "x" },
  });
  const kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfig);
  batch = kc.makeApiClient(BatchV1Api);
  core = kc.makeApiClient(CoreV1Api);
});
afterAll(async () => {
  await kubelet?.stop();
  await sim?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A Job shaped like the operator's: env from values, secrets and fields; emptyDir workspace and home. */
function makeJob(name: string, env: Obj[] = [], spec: Obj = {}): Obj {
  const j = job(
    name,
    {
      env: [
        { name: "AGENTFACTORY_STAGE", value: "triage" },
        { name: "AGENTFACTORY_WORKSPACE", value: "/workspace" },
        { name: "HOME", value: "/home/runner" },
        { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
        { name: "POD_NS", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
        ...env,
      ],
      volumeMounts: [
        { name: "workspace", mountPath: "/workspace" },
        { name: "home", mountPath: "/home/runner" },
      ],
      securityContext: { readOnlyRootFilesystem: true, runAsUser: 1000 },
    },
    spec,
  ) as Obj;
  j.spec.template.spec.volumes = [
    { name: "workspace", emptyDir: {} },
    { name: "home", emptyDir: {} },
  ];
  return j;
}

async function jobCondition(name: string): Promise<Obj> {
  return waitFor(() => {
    const j = sim.get("jobs", NS, name) as Obj | undefined;
    return j?.status?.conditions?.find(
      (c: Obj) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
    );
  }, `job ${name} to finish`);
}

function podsOf(jobName: string): Obj[] {
  return sim.list("pods", NS, { labelSelector: `job-name=${jobName}` }) as Obj[];
}

describe("kubelet, process mode", () => {
  it("runs a Job to Complete with secret/field env, mapped emptyDirs and the termination message in the pod status", async () => {
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: "gh-token" }, stringData: { token: "ghs_secret" } },
    });
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: "urls" }, data: { url: Buffer.from("http://x").toString("base64") } },
    });
    await batch.createNamespacedJob({
      namespace: NS,
      body: makeJob("ok-1", [
        { name: "GITHUB_TOKEN", valueFrom: { secretKeyRef: { name: "gh-token", key: "token" } } },
        { name: "URL", valueFrom: { secretKeyRef: { name: "urls", key: "url" } } },
      ]) as never,
    });
    const cond = await jobCondition("ok-1");
    expect(cond).toMatchObject({ type: "Complete", reason: "CompletionsReached" });
    const j = sim.get("jobs", NS, "ok-1") as Obj;
    expect(j.status).toMatchObject({ succeeded: 1, active: 0 });
    expect(j.status.startTime).toBeTruthy();
    expect(j.status.completionTime).toBeTruthy();

    const [pod] = podsOf("ok-1");
    expect(pod?.metadata.name).toMatch(/^ok-1-[a-z0-9]{5}$/);
    expect(pod?.metadata.labels["controller-uid"]).toBe(j.metadata.uid);
    expect(pod?.metadata.ownerReferences[0]).toMatchObject({ kind: "Job", name: "ok-1", controller: true });
    expect(pod?.status.phase).toBe("Succeeded");
    const terminated = pod?.status.containerStatuses[0].state.terminated;
    expect(terminated).toMatchObject({ exitCode: 0, reason: "Completed" });
    expect(JSON.parse(terminated.message)).toEqual({
      stage: "triage",
      pod: pod?.metadata.name,
      ns: NS,
      token: "ghs_secret",
      url: "http://x",
      workspaceIsTemp: true,
      home: true,
      extra: "x",
    });
    const log = await core.readNamespacedPodLog({ name: pod?.metadata.name, namespace: NS });
    expect(log).toContain(`runner starting in ${pod?.metadata.name}`);
    expect(log).toContain("some stderr");
  });

  it("fails a Job whose pod exits non-zero (backoffLimit 0 → BackoffLimitExceeded), retrying up to backoffLimit", async () => {
    await batch.createNamespacedJob({
      namespace: NS,
      body: makeJob("fail-1", [{ name: "EXIT_CODE", value: "1" }]) as never,
    });
    const cond = await jobCondition("fail-1");
    expect(cond).toMatchObject({ type: "Failed", reason: "BackoffLimitExceeded" });
    const pods = podsOf("fail-1");
    expect(pods).toHaveLength(1);
    expect(pods[0]?.status.phase).toBe("Failed");
    const terminated = pods[0]?.status.containerStatuses[0].state.terminated;
    expect(terminated).toMatchObject({ exitCode: 1, reason: "Error" });
    expect(JSON.parse(terminated.message).stage).toBe("triage");

    await batch.createNamespacedJob({
      namespace: NS,
      body: makeJob("fail-2", [{ name: "EXIT_CODE", value: "3" }], { backoffLimit: 1 }) as never,
    });
    await jobCondition("fail-2");
    expect(podsOf("fail-2")).toHaveLength(2);
    expect((sim.get("jobs", NS, "fail-2") as Obj).status.failed).toBe(2);
  });

  it("kills a Job's pod at activeDeadlineSeconds (Failed, DeadlineExceeded)", async () => {
    await batch.createNamespacedJob({
      namespace: NS,
      body: makeJob("deadline-1", [{ name: "SLEEP", value: "60000" }], { activeDeadlineSeconds: 1 }) as never,
    });
    const cond = await jobCondition("deadline-1");
    expect(cond).toMatchObject({ type: "Failed", reason: "DeadlineExceeded" });
    const run = await waitFor(
      () => kubelet.pods().find((p) => p.job === "deadline-1" && p.exitCode !== undefined),
      "the killed pod to exit",
    );
    expect(run.exitCode).toBe(143);
  });

  it("waits with CreateContainerConfigError until a referenced Secret exists", async () => {
    await batch.createNamespacedJob({
      namespace: NS,
      body: makeJob("secret-late", [
        { name: "GITHUB_TOKEN", valueFrom: { secretKeyRef: { name: "late", key: "token" } } },
      ]) as never,
    });
    const waiting = await waitFor(
      () => podsOf("secret-late")[0]?.status.containerStatuses?.[0]?.state.waiting,
      "CreateContainerConfigError",
    );
    expect(waiting).toMatchObject({ reason: "CreateContainerConfigError", message: 'secret "late" not found' });
    sim.create("secrets", { metadata: { name: "late" }, stringData: { token: "t" } });
    expect(await jobCondition("secret-late")).toMatchObject({ type: "Complete" });
  });

  it("kills the running container when its Job is deleted with background propagation", async () => {
    await batch.createNamespacedJob({
      namespace: NS,
      body: makeJob("delete-1", [{ name: "SLEEP", value: "60000" }]) as never,
    });
    await waitFor(() => kubelet.pods().find((p) => p.job === "delete-1" && p.pid), "the pod to start");
    await batch.deleteNamespacedJob({ name: "delete-1", namespace: NS, propagationPolicy: "Background" });
    const run = await waitFor(
      () => kubelet.pods().find((p) => p.job === "delete-1" && p.exitCode !== undefined),
      "the pod to be killed",
    );
    expect(run.exitCode).toBe(143);
    expect(podsOf("delete-1")).toHaveLength(0);
  });
});

/** A pod shaped like a stage pod: an init container, a native sidecar and the runner share one emptyDir. */
function multiJob(name: string, env: Obj[] = [], { init = true } = {}): Obj {
  const shared = [{ name: "shared", mountPath: "/shared" }];
  const sharedEnv = [{ name: "SHARED", value: "/shared" }, ...env];
  const j = job(name, { env: sharedEnv, volumeMounts: shared }) as Obj;
  const spec = j.spec.template.spec;
  spec.initContainers = [
    ...(init ? [{ name: "prepare", image: "x", args: ["init"], env: sharedEnv, volumeMounts: shared }] : []),
    { name: "sandbox", image: "x", restartPolicy: "Always", args: ["sidecar"], env: sharedEnv, volumeMounts: shared },
  ];
  spec.volumes = [{ name: "shared", emptyDir: {} }];
  return j;
}

describe("kubelet, multi-container pods (process mode)", () => {
  it("runs init containers first, then the sidecar and the runner on shared volumes; the result is the runner's; the sidecar stops after", async () => {
    await batch.createNamespacedJob({ namespace: NS, body: multiJob("multi-1") as never });
    expect(await jobCondition("multi-1")).toMatchObject({ type: "Complete" });
    const [pod] = podsOf("multi-1");
    expect(pod?.status.phase).toBe("Succeeded");
    const terminated = pod?.status.containerStatuses[0].state.terminated;
    expect(pod?.status.containerStatuses.map((c: Obj) => c.name)).toEqual(["runner"]);
    expect(JSON.parse(terminated.message)).toEqual({ init: "init ran", sidecar: "sidecar up", runs: "1" });
    const inits = Object.fromEntries(pod?.status.initContainerStatuses.map((c: Obj) => [c.name, c.state]));
    expect(inits.prepare.terminated).toMatchObject({ exitCode: 0, reason: "Completed" });
    // Stopped by the kubelet once the runner ended (its SIGTERM handler exits 0).
    expect(inits.sandbox.terminated).toMatchObject({ exitCode: 0 });
    const run = kubelet.pods().find((p) => p.job === "multi-1")!;
    expect(run.containers.map((c) => [c.name, c.kind, c.exitCode])).toEqual([
      ["prepare", "init", 0],
      ["sandbox", "sidecar", 0],
      ["runner", "main", 0],
    ]);
  });

  it("restarts a sidecar that exits while the pod runs", async () => {
    await batch.createNamespacedJob({
      namespace: NS,
      body: multiJob("multi-2", [{ name: "CRASH_ONCE", value: "1" }], { init: false }) as never,
    });
    expect(await jobCondition("multi-2")).toMatchObject({ type: "Complete" });
    const [pod] = podsOf("multi-2");
    expect(JSON.parse(pod?.status.containerStatuses[0].state.terminated.message)).toMatchObject({ runs: "2" });
    expect(pod?.status.initContainerStatuses[0]).toMatchObject({ name: "sandbox", restartCount: 1 });
  });

  it("fails the pod when an init container fails, without starting the runner", async () => {
    await batch.createNamespacedJob({
      namespace: NS,
      body: multiJob("multi-3", [{ name: "INIT_EXIT", value: "4" }]) as never,
    });
    expect(await jobCondition("multi-3")).toMatchObject({ type: "Failed" });
    const run = kubelet.pods().find((p) => p.job === "multi-3")!;
    expect(run.phase).toBe("Failed");
    expect(run.containers.find((c) => c.name === "prepare")?.exitCode).toBe(4);
    expect(run.containers.find((c) => c.name === "runner")?.pid).toBeUndefined();
  });

  it("runs every regular container; the pod succeeds when all of them do", async () => {
    const j = multiJob("multi-4", [], { init: false });
    j.spec.template.spec.containers.push({ name: "second", image: "x", args: ["main2"] });
    await batch.createNamespacedJob({ namespace: NS, body: j as never });
    expect(await jobCondition("multi-4")).toMatchObject({ type: "Complete" });
    const [pod] = podsOf("multi-4");
    expect(pod?.status.containerStatuses.map((c: Obj) => c.name)).toEqual(["runner", "second"]);
    expect(pod?.status.containerStatuses[1].state.terminated.message).toBe("second main");
  });
});

describe("podman argv", () => {
  it("adds the pod's fsGroup and supplementalGroups, and the node's PID limit", () => {
    const argv = podmanRunArgs({
      podName: "p-sandbox",
      container: { name: "sandbox", securityContext: { runAsUser: 10002, runAsGroup: 10002 } },
      podSecurityContext: { runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, supplementalGroups: [5] },
      pidsLimit: 256,
      image: "img",
      mounts: [],
      terminationLogHostPath: "/tmp/term",
      env: {},
    });
    const joined = argv.join(" ");
    expect(joined).toContain("--user 10002:10002");
    expect(joined).toContain("--group-add 10001 --group-add 5");
    expect(joined).toContain("--pids-limit 256");
  });

  it("runs restricted, with volumes, the termination log and env names only (values via the environment)", () => {
    const argv = podmanRunArgs({
      podName: "run-triage-1-abcde",
      container: {
        name: "runner",
        args: ["--verbose"],
        securityContext: { readOnlyRootFilesystem: true, runAsUser: 1000 },
        terminationMessagePath: "/dev/termination-log",
        resources: { limits: { memory: "512Mi", cpu: "500m" } },
      },
      podSecurityContext: { runAsGroup: 1000 },
      image: "localhost/agentfactory-runner:dev",
      mounts: [{ hostPath: "/tmp/ws", mountPath: "/workspace" }],
      terminationLogHostPath: "/tmp/term",
      env: { GITHUB_TOKEN: "ghs_secret", AGENTFACTORY_STAGE: "write", HOME: "/home/runner" },
    });
    expect(argv).toEqual([
      "--runtime",
      "runc",
      "run",
      "--rm",
      "--network",
      "host",
      "--ulimit",
      "nofile=20000:20000",
      "--ulimit",
      "nproc=1024:1024",
      "--name",
      "run-triage-1-abcde",
      "--read-only",
      "--user",
      "1000:1000",
      "--cap-drop",
      "ALL",
      "--security-opt",
      "no-new-privileges",
      "--memory",
      "536870912",
      "--cpus",
      "0.5",
      "-v",
      "/tmp/ws:/workspace",
      "-v",
      "/tmp/term:/dev/termination-log",
      "-e",
      "GITHUB_TOKEN",
      "-e",
      "AGENTFACTORY_STAGE",
      "-e",
      "HOME=/home/runner",
      "localhost/agentfactory-runner:dev",
      "--verbose",
    ]);
    expect(argv.join(" ")).not.toContain("ghs_secret");
    const env = podmanProcessEnv({ GITHUB_TOKEN: "ghs_secret", HOME: "/home/runner" });
    expect(env.GITHUB_TOKEN).toBe("ghs_secret");
    expect(env.HOME).toBe(process.env.HOME);
  });
});

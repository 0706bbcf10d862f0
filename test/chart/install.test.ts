/**
 * The chart on the real control plane: a real `helm install` lays out the CRD, the runs namespace (Pod Security
 * "restricted"), ServiceAccounts and RBAC; the operator runs on a token of its own chart ServiceAccount through
 * the in-cluster path and drives a run through real Jobs (kubelet in process mode with the fixture runner); a
 * Role missing a verb stops it loudly; `helm upgrade` and `helm uninstall` (CRD, namespace and runs kept).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  ApiextensionsV1Api,
  AppsV1Api,
  AuthenticationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRun } from "../../core/agentrun.ts";
import { GROUP, PLURAL, VERSION } from "../../core/agentrun.ts";
import { PooledKubeConfig, statusCode } from "../../operator/kube/client.ts";
import { agentRun } from "../../operator/testing.ts";
import {
  type Cluster,
  helmInstallArgs,
  OPERATOR_ROLE,
  OPERATOR_SERVICE_ACCOUNT,
  RELEASE,
  RELEASE_NAMESPACE,
  RUNNER_SERVICE_ACCOUNT,
  RUNS_NAMESPACE,
  startCluster,
  waitUntil,
} from "../world/controlplane/cluster.ts";
import { REPO_ROOT } from "../world/kube/server.ts";
import { type NatsServer, startNats } from "../world/nats.ts";

const TSX = join(REPO_ROOT, "node_modules/tsx/dist/loader.mjs");
const FIXTURE_RUNNER = join(REPO_ROOT, "test/operator/fixtures/runner.sh");
const crd = { group: GROUP, version: VERSION, plural: PLURAL };
let cluster: Cluster;
let nats: NatsServer;

interface Operator {
  proc: ChildProcess;
  logs: string[];
  exited: Promise<number | null>;
}

function startOperator(): Operator {
  const proc = spawn(process.execPath, ["--import", TSX, join(REPO_ROOT, "operator/main.ts")], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      ...cluster.operatorEnv, // in-cluster path: no KUBECONFIG_PATH
      NAMESPACE: RUNS_NAMESPACE,
      ...nats.env("operator"),
      CONSUME_TICKETS: "false",
      RUNNER_SERVICE_ACCOUNT,
      METRICS_PORT: "0",
      METRICS_HOST: "127.0.0.1",
      LEADER_ELECTION: "true",
      LOG_LEVEL: "info",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  const onData = (c: Buffer) => logs.push(...c.toString().split("\n").filter(Boolean));
  proc.stdout?.on("data", onData);
  proc.stderr?.on("data", onData);
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return { proc, logs, exited };
}

async function stopOperator(op: Operator): Promise<void> {
  if (op.proc.exitCode === null && op.proc.signalCode === null) op.proc.kill("SIGTERM");
  await op.exited;
}

beforeAll(async () => {
  nats = await startNats();
  cluster = await startCluster({ kubeletMode: "process", processCommand: ["/bin/sh", FIXTURE_RUNNER] });
  await cluster.createSecret("agentfactory-model", { ANTHROPIC_API_KEY: "sk-test" });
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
  await nats?.stop();
});

describe("the chart installed by helm into the real API server", () => {
  it("lays out the CRD, the restricted runs namespace, the ServiceAccounts and the operator's Role", async () => {
    const ns = await cluster.core.readNamespace({ name: RUNS_NAMESPACE });
    expect(ns.metadata?.labels?.["pod-security.kubernetes.io/enforce"]).toBe("restricted");
    const sa = await cluster.core.readNamespacedServiceAccount({
      name: OPERATOR_SERVICE_ACCOUNT,
      namespace: RELEASE_NAMESPACE,
    });
    expect(sa.automountServiceAccountToken).toBe(true);
    const runner = await cluster.core.readNamespacedServiceAccount({
      name: RUNNER_SERVICE_ACCOUNT,
      namespace: RUNS_NAMESPACE,
    });
    expect(runner.automountServiceAccountToken).toBe(false);
    const role = await cluster.kc
      .makeApiClient(RbacAuthorizationV1Api)
      .readNamespacedRole({ name: OPERATOR_ROLE, namespace: RUNS_NAMESPACE });
    expect((role.rules ?? []).find((r) => r.resources?.includes("jobs"))?.verbs).toContain("watch");
    const { stdout } = await cluster.helm(["status", RELEASE, "-n", RELEASE_NAMESPACE, "-o", "json"]);
    expect(JSON.parse(stdout)).toMatchObject({ info: { status: "deployed" }, version: 1 });
  });

  it("runs the operator on its own ServiceAccount's token (in-cluster path), authorized by the chart's Role", async () => {
    const op = startOperator();
    try {
      await waitUntil("the controller to start", async () => op.logs.some((l) => l.includes("controller started")));
      // It leads through the Lease the leader-election Role lets it keep.
      const lease = await cluster.kc
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ name: "agentfactory-operator", namespace: RUNS_NAMESPACE });
      expect(lease.spec?.holderIdentity).toBeTruthy();

      // The token is the ServiceAccount's: the API server says who it is, and refuses what the Role does not grant.
      const root = cluster.operatorEnv.SERVICE_ACCOUNT_ROOT!;
      const token = await readFile(join(root, "var/run/secrets/kubernetes.io/serviceaccount/token"), "utf8");
      const asOperator = new PooledKubeConfig();
      asOperator.loadFromClusterAndUser(
        { name: "world", server: cluster.url, caFile: join(cluster.cp.dir, "pki/ca.crt"), skipTLSVerify: false },
        { name: "operator", token },
      );
      const review = await asOperator.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
        body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
      });
      expect(review.status?.userInfo?.username).toBe(
        `system:serviceaccount:${RELEASE_NAMESPACE}:${OPERATOR_SERVICE_ACCOUNT}`,
      );
      const listSecrets = await asOperator
        .makeApiClient(CoreV1Api)
        .listNamespacedSecret({ namespace: RUNS_NAMESPACE })
        .catch((e) => e);
      expect(statusCode(listSecrets)).toBe(403);

      // A run goes through real Jobs: created by the operator, admitted under Pod Security "restricted", bound by
      // the scheduler, run by the kubelet, completed by the Job controller.
      const run = agentRun({ number: 11, workItem: "gh-11" });
      delete run.metadata.uid;
      delete run.metadata.resourceVersion;
      delete run.metadata.generation;
      await cluster.custom.createNamespacedCustomObject({ ...crd, namespace: RUNS_NAMESPACE, body: run });
      const done = await waitUntil(
        "the run to end",
        async () => {
          const r = cluster.list("agentruns", RUNS_NAMESPACE).find((x) => x.metadata.name === run.metadata.name) as
            | AgentRun
            | undefined;
          return r && ["Ready", "Escalated", "Failed"].includes(r.status?.phase ?? "") ? r : undefined;
        },
        120_000,
      );
      expect(done.status?.phase, JSON.stringify(done.status)).toBe("Ready");
      expect(
        done.status?.stages.map((s) => `${s.name}:${s.outcome}`),
        JSON.stringify(done.status?.stages),
      ).toEqual(["triage:Succeeded", "write:Succeeded", "review:Succeeded"]);
      const jobs = cluster.list("jobs", RUNS_NAMESPACE);
      expect(jobs).toHaveLength(3);
      for (const j of jobs)
        expect(j.status.conditions.find((c: { type: string }) => c.type === "Complete")).toBeTruthy();
      const pods = cluster.list("pods", RUNS_NAMESPACE);
      expect(pods.map((p) => p.spec.serviceAccountName)).toEqual(Array(3).fill(RUNNER_SERVICE_ACCOUNT));
      expect(pods.every((p) => p.spec.nodeName === cluster.cp.nodeName)).toBe(true);
    } finally {
      await stopOperator(op);
    }
    expect(op.logs.some((l) => l.includes('"statusCode":403') || l.includes("Forbidden"))).toBe(false);
  }, 180_000);

  it("stops the operator loudly when its Role lacks a verb, and helm upgrade restores the Role", async () => {
    const rbac = cluster.kc.makeApiClient(RbacAuthorizationV1Api);
    const role = await rbac.readNamespacedRole({ name: OPERATOR_ROLE, namespace: RUNS_NAMESPACE });
    for (const rule of role.rules ?? [])
      if (rule.resources?.includes("jobs")) rule.verbs = rule.verbs.filter((v) => v !== "watch");
    await rbac.replaceNamespacedRole({ name: OPERATOR_ROLE, namespace: RUNS_NAMESPACE, body: role });

    const op = startOperator();
    const code = await Promise.race([op.exited, new Promise((r) => setTimeout(() => r("still running"), 60_000))]);
    await stopOperator(op);
    expect(code).toBe(1);
    const fatal = op.logs
      .map((l) => JSON.parse(l) as { level: number; msg: string; missing?: string[] })
      .find((l) => l.level === 60);
    expect(fatal?.missing).toEqual(["watch jobs.batch"]);
    expect(fatal?.msg).toContain("lacks 1 permission(s) in namespace agentfactory: watch jobs.batch");

    // Positive control: the chart's own Role lets it start again. Helm 4 applies server-side, so a hand-edited
    // Role is a field conflict that a plain upgrade refuses; --force-conflicts takes the rules back.
    const upgrade = helmInstallArgs({ "runs.stageTimeoutSeconds": "600" }, "upgrade");
    await expect(cluster.helm(upgrade)).rejects.toThrow(/conflict.*Role.*\.rules/s);
    await cluster.helm([...upgrade, "--force-conflicts"]);
    const restored = await rbac.readNamespacedRole({ name: OPERATOR_ROLE, namespace: RUNS_NAMESPACE });
    expect((restored.rules ?? []).find((r) => r.resources?.includes("jobs"))?.verbs).toContain("watch");
    const deployment = await cluster.kc
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ name: "agentfactory-operator", namespace: RELEASE_NAMESPACE });
    const env = deployment.spec?.template.spec?.containers[0]?.env ?? [];
    expect(env.find((e) => e.name === "STAGE_TIMEOUT_SECONDS")?.value).toBe("600");
    const { stdout } = await cluster.helm(["status", RELEASE, "-n", RELEASE_NAMESPACE, "-o", "json"]);
    // The refused upgrade is revision 2 (failed), the forced one revision 3.
    expect(JSON.parse(stdout)).toMatchObject({ info: { status: "deployed" }, version: 3 });
    const again = startOperator();
    try {
      await waitUntil("the controller to start", async () => again.logs.some((l) => l.includes("controller started")));
    } finally {
      await stopOperator(again);
    }
  }, 120_000);

  it("helm uninstall removes the release but keeps the CRD, the runs namespace and the runs", async () => {
    const before = cluster.list("agentruns", RUNS_NAMESPACE).length;
    expect(before).toBeGreaterThan(0);
    await cluster.helm(["uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait"]);
    const sa = await cluster.core
      .readNamespacedServiceAccount({ name: OPERATOR_SERVICE_ACCOUNT, namespace: RELEASE_NAMESPACE })
      .catch((e) => e);
    expect(statusCode(sa)).toBe(404);
    const role = await cluster.kc
      .makeApiClient(RbacAuthorizationV1Api)
      .readNamespacedRole({ name: OPERATOR_ROLE, namespace: RUNS_NAMESPACE })
      .catch((e) => e);
    expect(statusCode(role)).toBe(404);
    const kept = await cluster.kc
      .makeApiClient(ApiextensionsV1Api)
      .readCustomResourceDefinition({ name: `${PLURAL}.${GROUP}` });
    expect(kept.metadata?.annotations?.["helm.sh/resource-policy"]).toBe("keep");
    expect(kept.metadata?.deletionTimestamp).toBeUndefined();
    const ns = await cluster.core.readNamespace({ name: RUNS_NAMESPACE });
    expect(ns.status?.phase).toBe("Active");
    const runs = (await cluster.custom.listNamespacedCustomObject({ ...crd, namespace: RUNS_NAMESPACE })) as {
      items: AgentRun[];
    };
    expect(runs.items).toHaveLength(before);
    expect(runs.items[0]?.status?.phase).toBe("Ready");
  }, 60_000);
});

/**
 * `make demo`: the main job in the local test world. A labeled GitHub issue on a small repository
 * with a failing test goes through the gateway, NATS, the operator and the runner pods (Podman
 * containers of the runner image) and becomes a reviewed pull request; progress is printed as it happens.
 *
 * The world runs on the real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler built by `make deps`); CONTROL_PLANE=sim uses the API simulator instead. KUBELET_MODE=process
 * runs the pods as local processes instead of containers.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { AgentRun } from "../core/agentrun.ts";
import { isTerminal } from "../core/agentrun.ts";
import { CALC_FILES, ISSUE, REPO, SCENARIO } from "./e2e/scenario.ts";
import { KUBECTL, NAMESPACE, startWorld } from "./e2e/world.ts";
import { issuesLabeled } from "./world/github/index.ts";

const exec = promisify(execFile);
const mode = (process.env.KUBELET_MODE as "process" | "podman" | undefined) ?? "podman";
const verbose = process.env.DEMO_VERBOSE === "1";
const controlPlane = process.env.CONTROL_PLANE === "sim" ? "sim" : "real";
const t0 = Date.now();
const say = (text: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${text}`);

say(
  `starting the test world (kubelet runs pods with ${mode}, ${controlPlane === "real" ? "real control plane" : "API simulator"})…`,
);
const world = await startWorld({
  kubeletMode: mode,
  controlPlane,
  scenario: SCENARIO,
  onLog: (source, line) => {
    if (verbose) console.log(`        ${source}: ${line}`);
  },
});
let exitCode = 1;
try {
  const api = world.kube.kind === "real" ? `(kube-apiserver ${world.kube.version})` : "(simulator)";
  say(`nats-server ${world.nats.url}, Kubernetes API ${world.kube.url} ${api}, GitHub ${world.github.serverUrl}`);
  say(`gateway ${world.gateway.url}, operator metrics ${world.operator.url}/metrics`);
  await world.github.createRepo(REPO, CALC_FILES);
  const issue = world.github.createIssue(REPO, { ...ISSUE, labels: ["ai-agent"] });
  say(`issue ${REPO}#${issue.number} "${issue.title}" labeled ai-agent; its test fails (add() subtracts)`);

  const res = await world.deliver("issues", issuesLabeled(world.scope(REPO, ISSUE.user), issue, "ai-agent"));
  say(`GitHub webhook issues.labeled delivered → gateway answered ${res.status} ${await res.text()}`);

  const run = await world.waitFor("the AgentRun", () => world.runs()[0], 30_000);
  say(`operator created AgentRun ${run.metadata.name}`);
  const final = await follow(run.metadata.name);
  const pr = final.status?.pullRequest;
  say(`run ended ${final.status?.phase}: ${final.status?.message ?? ""}`);
  if (pr) {
    const pull = await world.github.pull(REPO, pr.number);
    say(`pull request #${pr.number} ${pr.url} (${pull.draft ? "draft" : "ready for review"}), branch ${pr.branch}`);
    console.log(`\n${pull.body}\n`);
  }
  const table = await exec(KUBECTL, ["--kubeconfig", world.kube.kubeconfigPath, "-n", NAMESPACE, "get", "agentruns"]);
  say("kubectl get agentruns");
  console.log(table.stdout);
  exitCode = final.status?.phase === "Ready" ? 0 : 1;
} catch (err) {
  console.error(err);
  console.error("operator log (last 40 lines):\n", world.operator.logs.slice(-40).join("\n"));
} finally {
  await world.stop();
}
process.exit(exitCode);

/** Prints every phase and stage change of the run until it ends. */
async function follow(name: string): Promise<AgentRun> {
  const seen = new Set<string>();
  return world.waitFor(
    "the run to finish",
    () => {
      const r = world.run(name);
      if (!r?.status) return undefined;
      const phase = `phase ${r.status.phase}`;
      if (!seen.has(phase)) {
        seen.add(phase);
        say(`AgentRun ${name}: ${phase}`);
      }
      for (const s of r.status.stages) {
        const key = `${s.jobName}:${s.outcome}`;
        if (seen.has(key)) continue;
        seen.add(key);
        if (s.outcome === "Running") say(`  Job ${s.jobName} started`);
        else {
          say(
            `  Job ${s.jobName} ${s.outcome}: $${s.costUsd.toFixed(4)}, ${s.turns} turns, ${s.durationSeconds}s — ${s.message}`,
          );
          if (s.outcome !== "Succeeded") dumpPodLog(s.jobName);
        }
      }
      return isTerminal(r.status.phase) ? r : undefined;
    },
    600_000,
  );
}

function dumpPodLog(job: string): void {
  const pods = world.kube.list("pods", NAMESPACE) as Array<{
    metadata: { name: string; labels?: Record<string, string> };
  }>;
  for (const pod of pods.filter((p) => p.metadata.name.startsWith(job))) {
    const log = world.kube.podLog(NAMESPACE, pod.metadata.name) ?? "";
    console.log(
      log
        .split("\n")
        .slice(-30)
        .map((l) => `        | ${l}`)
        .join("\n"),
    );
  }
}

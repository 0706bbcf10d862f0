/**
 * `make bench-operator`: N AgentRuns driven through the whole lifecycle by the operator (a child
 * process, as deployed) against the Kubernetes API simulator, with the kubelet simulator in process
 * mode running a trivial shell runner (test/operator/fixtures/runner.sh) and a real nats-server.
 *
 *   tsx bench/operator.ts [--runs 100,1000] [--concurrency 64]
 *
 * Prints per size: runs/minute, reconcile p50/p99 (from the operator's own histogram), ticket-to-Job
 * latency p50/p99 (ticket published → first Job stored, measured in the simulator) and the operator's
 * peak RSS (VmHWM). On stderr, where ticket-to-Job time goes: per-step p50/p99 (published → AgentRun stored →
 * ticket applied → Secret stored → Job stored), event-loop delay and CPU of this process (API simulator, Job
 * controller, kubelet) and of the operator, and the slowest runs' timelines (BENCH_DEBUG: also a sample).
 * TICKET_CONCURRENCY and --concurrency override the operator's defaults. The last line: `result: runs=… runs_per_min=… reconcile_p99_ms=… ticket_to_job_p50_ms=…
 * ticket_to_job_p99_ms=… peak_rss_mib=…`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { LABELS, runName } from "../core/names.ts";
import { ticketSubject } from "../core/streams.ts";
import { Ticket } from "../core/ticket.ts";
import { ensureStreams } from "../operator/consumer.ts";
import { REPO_ROOT, startKubeSim } from "../test/world/kube/index.ts";
import { startKubelet } from "../test/world/kube/kubelet.ts";
import { startNats } from "../test/world/nats.ts";

const NS = "agentfactory";
const { values } = parseArgs({
  options: {
    runs: { type: "string", default: process.env.BENCH_RUNS ?? "100,1000" },
    /** Reconcile workers (CONCURRENCY); the operator's default when not given. */
    concurrency: { type: "string" },
    timeout: { type: "string", default: "900" },
  },
});

/** The steps from ticket to Job, in order, as the bench sees them (store events, operator log lines). */
type Step = "published" | "runStored" | "ticketApplied" | "secretStored" | "jobStored" | "jobCreatedLog";
const STEP_PAIRS: [Step, Step][] = [
  ["published", "runStored"],
  ["runStored", "ticketApplied"],
  ["runStored", "secretStored"],
  ["secretStored", "jobStored"],
  ["jobStored", "jobCreatedLog"],
  ["published", "jobStored"],
];

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** histogram_quantile over Prometheus cumulative buckets (linear within a bucket). */
function histogramQuantile(text: string, name: string, q: number): number {
  const buckets: { le: number; count: number }[] = [];
  for (const line of text.split("\n")) {
    const m = new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"[^}]*\\} (\\S+)`).exec(line);
    if (m) buckets.push({ le: m[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(m[1]), count: Number(m[2]) });
  }
  buckets.sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.count ?? 0;
  if (!total) return Number.NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prevLe;
      return prevLe + ((b.le - prevLe) * (rank - prevCount)) / Math.max(1, b.count - prevCount);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/** The operator's own event-loop delay (prom-client default metrics). */
function metricsLag(text: string): string {
  const v = (n: string) => Number(new RegExp(`^${n} (\\S+)`, "m").exec(text)?.[1] ?? Number.NaN) * 1000;
  return `event-loop delay p50=${v("nodejs_eventloop_lag_p50_seconds").toFixed(1)}ms p99=${v("nodejs_eventloop_lag_p99_seconds").toFixed(1)}ms max=${v("nodejs_eventloop_lag_max_seconds").toFixed(1)}ms`;
}

function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

async function benchOnce(n: number): Promise<string> {
  const sim = await startKubeSim({ historyLimit: 100_000 });
  const kubelet = startKubelet({
    sim,
    mode: "process",
    processCommand: ["/bin/sh", `${REPO_ROOT}/test/operator/fixtures/runner.sh`],
  });
  const nats = await startNats();
  // Tickets published as the gateway publishes them, the streams made as the operator makes them.
  const setup = await connect(nats.options("operator"));
  await ensureStreams(await jetstreamManager(setup));
  await setup.close();
  const nc = await connect(nats.options("gateway"));
  const js = jetstream(nc);
  sim.create("secrets", {
    metadata: { name: "agentfactory-model", namespace: NS },
    data: { ANTHROPIC_API_KEY: Buffer.from("sk-bench").toString("base64") },
  });

  const published = new Map<string, number>();
  const latencies: number[] = [];
  const finalized = new Set<string>();
  const runCreated = new Map<string, number>();
  const runToJob: number[] = [];
  // Per-run step timestamps (wall clock ms, comparable with the operator's pino `time`).
  const wall = () => performance.timeOrigin + performance.now();
  const trace = new Map<string, Partial<Record<Step, number>>>();
  const mark = (run: string, step: Step, at = wall()) => {
    const t = trace.get(run);
    if (t && t[step] === undefined) t[step] = at;
  };
  const unsubscribe = sim.store.subscribe((e) => {
    const o = e.object as {
      kind?: string;
      metadata: { name: string; labels?: Record<string, string> };
      status?: { conditions?: { type: string; status: string }[] };
    };
    if (e.type === "ADDED" && (o.kind === "Secret" || o.kind === "Job")) {
      const l = o.metadata.labels ?? {};
      if (l[LABELS.stage] === "triage" && l[LABELS.attempt] === "1")
        mark(l[LABELS.run] ?? "", o.kind === "Job" ? "jobStored" : "secretStored");
    }
    if (e.type === "ADDED" && o.kind === "AgentRun") mark(o.metadata.name, "runStored");
    if (e.type === "ADDED" && o.kind === "Job") {
      const l = o.metadata.labels ?? {};
      const at = published.get(l[LABELS.run] ?? "");
      if (at !== undefined && l[LABELS.stage] === "triage" && l[LABELS.attempt] === "1") {
        latencies.push(performance.now() - at);
        const created = runCreated.get(l[LABELS.run] ?? "");
        if (created !== undefined) runToJob.push(performance.now() - created);
      }
    }
    if (e.type === "ADDED" && o.kind === "AgentRun") runCreated.set(o.metadata.name, performance.now());
    if (o.kind === "AgentRun" && o.status?.conditions?.some((c) => c.type === "Finalized" && c.status === "True"))
      finalized.add(o.metadata.name);
  });

  const ticketRun = new Map<string, string>();
  const warnings = new Map<string, number>();
  let port = 0;
  // The operator's Node flags as the chart sets them (NODE_OPTIONS): a small young generation and
  // a capped old space keep the resident set near the live heap.
  const nodeFlags = (process.env.OPERATOR_NODE_FLAGS ?? "--max-semi-space-size=2 --max-old-space-size=192")
    .split(" ")
    .filter(Boolean);
  const op: ChildProcess = spawn(process.execPath, [...nodeFlags, "--import", "tsx", "operator/main.ts"], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KUBECONFIG_PATH: sim.kubeconfigPath,
      NAMESPACE: NS,
      ...nats.env("operator"),
      METRICS_PORT: "0",
      METRICS_HOST: "127.0.0.1",
      LEADER_ELECTION: "true",
      LOG_LEVEL: "info",
      ...(values.concurrency ? { CONCURRENCY: values.concurrency } : {}),
      ...(process.env.TICKET_CONCURRENCY ? { TICKET_CONCURRENCY: process.env.TICKET_CONCURRENCY } : {}),
      ...(process.env.OPERATOR_CPU_PROF
        ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${process.env.OPERATOR_CPU_PROF}` }
        : {}),
      RESYNC_SECONDS: "600",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const abort = () => {
    op.kill("SIGKILL");
    void nats.stop().finally(() => process.exit(130));
  };
  process.once("SIGTERM", abort);
  process.once("SIGINT", abort);
  let ready = false;
  let buf = "";
  op.stdout!.on("data", (c: Buffer) => {
    buf += c.toString();
    const lines = buf.split("\n");
    buf = lines.pop() ?? "";
    for (const line of lines) {
      const m = /"port":(\d+).*"msg":"http listening"/.exec(line);
      if (m) port = Number(m[1]);
      if (line.includes("ticket consumer started")) ready = true;
      const lv = /"level":(\d+).*"msg":"([^"]*)"/.exec(line);
      if (lv && Number(lv[1]) >= 40) warnings.set(lv[2]!, (warnings.get(lv[2]!) ?? 0) + 1);
      if (line.includes('"msg":"ticket applied"') || line.includes('"msg":"job created"')) {
        const rec = JSON.parse(line) as { time: number; msg: string; ticket?: string; run?: string };
        if (rec.msg === "ticket applied" && rec.ticket)
          mark(ticketRun.get(rec.ticket) ?? "", "ticketApplied", rec.time);
        if (rec.msg === "job created" && rec.run) mark(rec.run, "jobCreatedLog", rec.time);
      }
    }
  });
  while (!ready) {
    if (op.exitCode !== null) throw new Error("operator exited");
    await new Promise((r) => setTimeout(r, 50));
  }

  const start = performance.now();
  const cpuAtStart = process.cpuUsage();
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const pubs = [];
  for (let i = 0; i < n; i++) {
    const delivery = `bench-${n}-${i}`;
    const t = Ticket.parse({
      // Dispatch tickets: admitted without a forge (a GitHub ticket's sender is checked on the forge first).
      id: `dispatch:${delivery}`,
      source: "dispatch",
      deliveryId: delivery,
      requestId: delivery,
      receivedAt: new Date().toISOString(),
      repo: "acme/web",
      number: 1000 + i,
      workItem: `gh-${1000 + i}`,
      url: `http://forge.invalid/acme/web/issues/${1000 + i}`,
      title: `Bench ticket ${i}`,
      body: "bench",
      author: "bench",
    });
    published.set(runName(t), performance.now());
    ticketRun.set(t.id, runName(t));
    trace.set(runName(t), { published: wall() });
    pubs.push(js.publish(ticketSubject("github", "new"), JSON.stringify(t), { msgID: t.id }));
  }
  await Promise.all(pubs);
  const deadline = Date.now() + Number(values.timeout) * 1000;
  let last = 0;
  while (finalized.size < n) {
    if (Date.now() > deadline) throw new Error(`timeout: ${finalized.size}/${n} runs finished`);
    if (Date.now() - last > 10_000) {
      last = Date.now();
      process.stderr.write(`  ${finalized.size}/${n} runs finished\n`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const minutes = (performance.now() - start) / 60_000;
  {
    const f = readFileSync(`/proc/${op.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    const opCpu = ((Number(f[11]) + Number(f[12])) / 100) * 1000;
    const me = process.cpuUsage(cpuAtStart);
    process.stderr.write(
      `  bench event-loop delay p50=${(lag.percentile(50) / 1e6).toFixed(1)}ms p99=${(lag.percentile(99) / 1e6).toFixed(1)}ms max=${(lag.max / 1e6).toFixed(1)}ms; operator ${metricsLag(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())}\n` +
        `  cpu: operator=${opCpu.toFixed(0)}ms bench(api+kubelet)=${((me.user + me.system) / 1000).toFixed(0)}ms wall=${(minutes * 60_000).toFixed(0)}ms\n`,
    );
  }
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const rss = peakRssMiB(op.pid!);
  if (process.env.BENCH_DEBUG)
    process.stderr.write(
      `${metrics
        .split("\n")
        .filter((l) => /^(nodejs_heap_size|nodejs_external|process_resident|nodejs_heap_space_size_used_bytes)/.test(l))
        .join("\n")}\n`,
    );
  const rec50 = histogramQuantile(metrics, "controller_runtime_reconcile_time_seconds", 0.5) * 1000;
  const rec99 = histogramQuantile(metrics, "controller_runtime_reconcile_time_seconds", 0.99) * 1000;
  latencies.sort((a, b) => a - b);
  runToJob.sort((a, b) => a - b);
  process.stderr.write(
    `  run-to-job p50=${quantile(runToJob, 0.5).toFixed(1)}ms p99=${quantile(runToJob, 0.99).toFixed(1)}ms\n`,
  );

  for (const [from, to] of STEP_PAIRS) {
    const d = [...trace.values()]
      .map((t) => (t[from] !== undefined && t[to] !== undefined ? t[to]! - t[from]! : Number.NaN))
      .filter((x) => !Number.isNaN(x))
      .sort((a, b) => a - b);
    process.stderr.write(
      `  ${from} -> ${to}: n=${d.length} p50=${quantile(d, 0.5).toFixed(1)}ms p99=${quantile(d, 0.99).toFixed(1)}ms\n`,
    );
  }

  for (const [msg, count] of warnings) process.stderr.write(`  operator warning x${count}: ${msg}\n`);
  const slowest = [...trace.entries()]
    .filter(([, t]) => t.jobStored !== undefined && t.published !== undefined)
    .sort(([, a], [, b]) => b.jobStored! - b.published! - (a.jobStored! - a.published!))
    .slice(0, 3);
  const sample = process.env.BENCH_DEBUG ? [...trace.entries()].filter((_, i) => i % Math.ceil(n / 8) === 0) : [];
  for (const [run, t] of [...slowest, ...sample])
    process.stderr.write(
      `  slow ${run}: ${Object.entries(t)
        .sort(([, a], [, b]) => a - b)
        .map(([k, v]) => `${k}+${(v - t.published!).toFixed(0)}`)
        .join(" ")}\n`,
    );

  unsubscribe();
  process.off("SIGTERM", abort);
  process.off("SIGINT", abort);
  const exited = once(op, "exit");
  op.kill("SIGTERM");
  await exited;
  await kubelet.stop();
  await nc.close();
  await nats.stop();
  await sim.stop();
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "nan");
  return [
    `runs=${n}`,
    `runs_per_min=${f(n / minutes)}`,
    `reconcile_p50_ms=${f(rec50)}`,
    `reconcile_p99_ms=${f(rec99)}`,
    `ticket_to_job_p50_ms=${f(quantile(latencies, 0.5))}`,
    `ticket_to_job_p99_ms=${f(quantile(latencies, 0.99))}`,
    `peak_rss_mib=${f(rss)}`,
  ].join(" ");
}

const sizes = values.runs
  .split(",")
  .map(Number)
  .filter((x) => x > 0);
const lines: string[] = [];
for (const n of sizes) {
  process.stderr.write(`bench-operator: ${n} concurrent runs\n`);
  const line = await benchOnce(n);
  lines.push(line);
  console.log(`size ${n}: ${line}`);
}
console.log(`result: ${lines.at(-1)}`);

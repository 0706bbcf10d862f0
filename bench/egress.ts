// make bench-egress: what the egress gateway adds to a model request. The scripted Anthropic API on
// loopback is called directly and through the real egress gateway (egress/main.ts bundled by esbuild,
// run by plain node as the image does; its ledger in a real nats-server), alternately, in the same
// run, as streaming requests on kept-alive connections; each latency is request start to the last
// byte of the stream. The gateway's path per request: verify the attempt token, a budget hold
// (compare-and-swap in NATS KV), forward, pass the stream through while reading usage, settle the
// charge (a second CAS) before the stream ends. Then STREAMS concurrent streams through the gateway
// across 50 runs, and the gateway's peak RSS. The last line is machine-readable.
// BENCH_REQUESTS, BENCH_WARMUP, BENCH_STREAMS change the counts; EGRESS_NODE_OPTIONS is passed to the
// gateway's node (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof).
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Agent, request } from "undici";
import { claimsFor, PROVIDER_KEY, readRun, reserve, startEgress, tokenFor } from "../test/egress/harness.ts";
import { startModelSim, text, turn } from "../test/world/anthropic/index.ts";
import { startNats } from "../test/world/nats.ts";

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 400);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 50);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 500);
const MODEL = "claude-sonnet-4-6";
// A realistic agent turn: a few KiB of conversation in, a few hundred tokens streamed out.
const BODY = JSON.stringify({
  model: MODEL,
  max_tokens: 1024,
  stream: true,
  system: "AgentFactory stage: write\nYou change code in the repository to fix the ticket.",
  messages: [{ role: "user", content: "Fix the export. ".repeat(200) }],
});

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}
const ms = (n: number) => n.toFixed(2);

async function bundleEgress(): Promise<{ file: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), "agentfactory-bench-egress-"));
  const file = join(dir, "egress.mjs");
  await build({
    entryPoints: [fileURLToPath(new URL("../egress/main.ts", import.meta.url))],
    outfile: file,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node24",
    logLevel: "warning",
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  });
  return { file, dir };
}

/** CPU seconds (user + system) a process has used so far. */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  if (!pid) return Number.NaN;
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function peakRssMib(pid: number | undefined): Promise<number> {
  if (!pid) return Number.NaN;
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kib = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]);
  return kib / 1024;
}

const nats = await startNats();
const sim = await startModelSim({ apiKey: PROVIDER_KEY, scenario: { write: [turn(text("Done. ".repeat(300)))] } });
const { file, dir } = await bundleEgress();
// Logs at info, as in production: every request is a log line.
const egress = await startEgress(
  {
    ...nats.env("egress"),
    MODEL_BASE_URL: sim.url,
    ...(process.env.EGRESS_NODE_OPTIONS ? { NODE_OPTIONS: process.env.EGRESS_NODE_OPTIONS } : {}),
  },
  { bundle: file },
);
const agent = new Agent({ connections: STREAMS + 16, keepAliveTimeout: 60_000 });

try {
  const claims = claimsFor({ namespace: "bench", name: "latency", uid: "bench-latency" });
  await reserve(egress.adminUrl, claims, { budgetUsd: 1e6 });
  const token = await tokenFor(claims, { ttlSeconds: 3600 });

  /** One streaming request, to the end of the stream; its time, size and whether it ended with message_stop. */
  async function call(base: string, key: string): Promise<{ ms: number; bytes: number; complete: boolean }> {
    const start = performance.now();
    const res = await request(`${base}/v1/messages`, {
      method: "POST",
      dispatcher: agent,
      headers: { "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: BODY,
    });
    let bytes = 0;
    let tail = "";
    for await (const chunk of res.body) {
      bytes += (chunk as Buffer).length;
      tail = (tail + (chunk as Buffer).toString("latin1")).slice(-64);
    }
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode} from ${base}`);
    return { ms: performance.now() - start, bytes, complete: tail.includes("event: message_stop") };
  }

  for (let i = 0; i < WARMUP; i++) {
    await call(sim.url, PROVIDER_KEY);
    await call(egress.url, token);
  }
  const direct: number[] = [];
  const proxied: number[] = [];
  let bytes = 0;
  const cpuBefore = await cpuSeconds(egress.pid);
  for (let i = 0; i < REQUESTS; i++) {
    // Alternate the order so neither side always runs on a warmer loop.
    if (i % 2) {
      direct.push((await call(sim.url, PROVIDER_KEY)).ms);
      const p = await call(egress.url, token);
      proxied.push(p.ms);
      bytes = p.bytes;
    } else {
      const p = await call(egress.url, token);
      proxied.push(p.ms);
      bytes = p.bytes;
      direct.push((await call(sim.url, PROVIDER_KEY)).ms);
    }
  }
  const cpuPerRequestUs = (((await cpuSeconds(egress.pid)) - cpuBefore) * 1e6) / REQUESTS;
  const run = await readRun(egress.adminUrl, claims.run);
  const charged = run.stages.write?.requests ?? 0;

  // Concurrent streams: 50 runs, STREAMS requests in flight at once through the gateway.
  const runs = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const c = claimsFor({ namespace: "bench", name: `streams-${i}`, uid: `bench-streams-${i}` });
      await reserve(egress.adminUrl, c, { budgetUsd: 1e6 });
      return tokenFor(c, { ttlSeconds: 3600 });
    }),
  );
  const started = performance.now();
  const streams = await Promise.allSettled(
    Array.from({ length: STREAMS }, (_, i) => call(egress.url, runs[i % runs.length] as string)),
  );
  const wall = performance.now() - started;
  const held = streams.filter((s) => s.status === "fulfilled" && s.value.complete).length;
  const failed = streams.filter((s) => s.status === "rejected");
  const rss = await peakRssMib(egress.pid);
  const metrics = await egress.metrics();
  const conflicts = Number(/^agentfactory_egress_ledger_conflicts_total (\S+)$/m.exec(metrics)?.[1] ?? 0);

  const d50 = quantile(direct, 0.5);
  const p50 = quantile(proxied, 0.5);
  const d99 = quantile(direct, 0.99);
  const p99 = quantile(proxied, 0.99);
  console.log(
    `egress bench: ${REQUESTS} streaming requests each way (${BODY.length} B in, ${bytes} B streamed out), after ${WARMUP} warm-up pairs\n` +
      `  direct   p50=${ms(d50)}ms p99=${ms(d99)}ms\n` +
      `  proxied  p50=${ms(p50)}ms p99=${ms(p99)}ms (charged ${charged} requests to the run, $${run.spentUsd.toFixed(4)})\n` +
      `  added    p50=${ms(p50 - d50)}ms p99=${ms(p99 - d99)}ms; egress CPU ${cpuPerRequestUs.toFixed(0)} µs per request (10 ms clock ticks)\n` +
      `  ${STREAMS} concurrent streams across 50 runs: ${held} complete in ${ms(wall)}ms, ${failed.length} failed` +
      `${failed.length ? ` (${String((failed[0] as PromiseRejectedResult).reason)})` : ""}; ledger CAS retries ${conflicts}\n` +
      `  egress peak RSS ${rss.toFixed(1)} MiB`,
  );
  console.log(
    `result: direct_p50_ms=${ms(d50)} proxied_p50_ms=${ms(p50)} overhead_p50_ms=${ms(p50 - d50)} ` +
      `direct_p99_ms=${ms(d99)} gateway_p99_ms=${ms(p99)} overhead_p99_ms=${ms(p99 - d99)} ` +
      `streams=${held} rss_mib=${rss.toFixed(1)} requests=${REQUESTS}`,
  );
} finally {
  await agent.close();
  await egress.stop();
  await sim.stop();
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
}

// make bench-gateway: signed 8 KiB `issues.labeled` deliveries on loopback through the real gateway
// (verify + sanitize + JetStream publish with ack, file storage; senders are checked by the operator), beside the
// same Hono app answering without verify/publish. Prints requests/s and p50/p99 of both; the last
// line is machine-readable.
import { type ChildProcess, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import autocannon from "autocannon";
import { build } from "esbuild";
import { TICKETS_STREAM } from "../core/streams.ts";
import { issuesPayload } from "../test/gateway/fakes.ts";
import { startNats } from "../test/world/nats.ts";

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const BODY_BYTES = 8 * 1024;
const SECRET = "bench-webhook-secret";

/** Issue numbers of the benchmark's events: fixed width, so every body has the same size. */
const FIRST_ISSUE = 1_000_000;
/** When the benchmark's labelings happened: now (the gateway refuses events older than 72 h). */
const EVENT_TIME = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

/** A real-shaped `issues.labeled` payload of issue FIRST_ISSUE, padded to exactly 8 KiB with issue-body text. */
function payload(): string {
  const base = issuesPayload({ body: "", number: FIRST_ISSUE, updatedAt: EVENT_TIME });
  const skeleton = JSON.stringify(base).length;
  const line = "The export should stream rows instead of building the whole file in memory. ";
  const body = line.repeat(Math.ceil(BODY_BYTES / line.length)).slice(0, BODY_BYTES - skeleton);
  const text = JSON.stringify(issuesPayload({ body, number: FIRST_ISSUE, updatedAt: EVENT_TIME }));
  if (text.length !== BODY_BYTES) throw new Error(`payload is ${text.length} bytes`);
  return text;
}

let bundle: string | undefined;
/**
 * The server bundled by esbuild and run by plain node, as the image runs `dist/gateway.js`
 * (under tsx, source-map hooks on every Error the NATS client creates cost several percent).
 */
async function serverBundle(): Promise<string> {
  if (bundle) return bundle;
  const dir = await mkdtemp(join(tmpdir(), "agentfactory-bench-"));
  const outfile = join(dir, "gateway-server.mjs");
  await build({
    entryPoints: [fileURLToPath(new URL("./gateway-server.ts", import.meta.url))],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node24",
    logLevel: "warning",
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  });
  bundle = outfile;
  return outfile;
}

async function startServer(
  mode: "verified" | "bare",
  natsEnv: Record<string, string>,
): Promise<{ port: number; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [await serverBundle(), mode], {
    env: {
      ...process.env,
      ...natsEnv,
      GITHUB_WEBHOOK_SECRET: SECRET,
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  // The server logs a JSON line per request to stdout, read here as a log collector would.
  let out = "";
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += String(chunk);
      const match = /port=(\d+)/.exec(out);
      if (match) {
        proc.stdout?.off("data", onData);
        proc.stdout?.resume();
        resolve(Number(match[1]));
      } else if (out.length > 1 << 20) out = out.slice(-4096);
    };
    proc.stdout?.on("data", onData);
    proc.once("exit", (code) => reject(new Error(`gateway-server (${mode}) exited with ${code}: ${out}`)));
  });
  return { port, proc };
}

/** Stops the server; answers its CPU time per request (µs) since the last reset. */
async function stopServer(proc: ChildProcess): Promise<number> {
  let out = "";
  proc.stdout?.on("data", (chunk) => {
    out = (out + String(chunk)).slice(-4096);
  });
  proc.kill("SIGTERM");
  await once(proc, "exit");
  const match = /served=(\d+) cpu_us=(\d+)/.exec(out);
  return match ? Number(match[2]) / Math.max(1, Number(match[1])) : Number.NaN;
}

const resetCounters = (port: number) =>
  fetch(`http://127.0.0.1:${port}/`, { method: "POST", headers: { "x-bench-reset": "1" } });

/** Where each load's issue numbers start, so no two loads send the same event. */
const runs = new Map<string, number>([
  ["warmup", 0],
  ["run", 3_000_000],
  ["bare", 6_000_000],
]);

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  ok: number;
  other: number;
}

async function load(port: number, body: string, seconds: number, prefix: string): Promise<Figures> {
  let n = 0;
  const sign = (text: string) => `sha256=${createHmac("sha256", SECRET).update(text).digest("hex")}`;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/webhooks/github`,
    connections: CONNECTIONS,
    duration: seconds,
    method: "POST",
    body,
    headers: {
      "content-type": "application/json",
      "x-github-event": "issues",
    },
    requests: [
      {
        // Every request is a new event (another issue, same body size), so the broker stores each one:
        // ticket ids come from the signed event, and a repeated body would be a duplicate.
        setupRequest: (req) => {
          const issue = String(FIRST_ISSUE + (runs.get(prefix) ?? 0) + n++);
          const text = body.replaceAll(String(FIRST_ISSUE), issue);
          return {
            ...req,
            body: text,
            headers: { ...req.headers, "x-github-delivery": `${prefix}-${n}`, "x-hub-signature-256": sign(text) },
          };
        },
      },
    ],
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    ok: result["2xx"],
    other: result.non2xx + result.errors,
  };
}

/** CPU seconds (user + system) a process used so far, from /proc. */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  if (!pid) return Number.NaN;
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

const nats = await startNats();
const body = payload();
try {
  const verified = await startServer("verified", nats.env("gateway"));
  const warm = await load(verified.port, body, 2, "warmup");
  await resetCounters(verified.port);
  const natsBefore = await cpuSeconds(nats.pid);
  const real = await load(verified.port, body, DURATION, "run");
  const natsCpu = ((await cpuSeconds(nats.pid)) - natsBefore) / Math.max(1, real.ok);
  const realCpu = await stopServer(verified.proc);

  const nc = await connect(nats.options("admin"));
  const info = await (await jetstreamManager(nc)).streams.info(TICKETS_STREAM);
  await nc.close();

  const bareServer = await startServer("bare", nats.env("gateway"));
  await load(bareServer.port, body, 2, "warmup");
  await resetCounters(bareServer.port);
  const bare = await load(bareServer.port, body, DURATION, "bare");
  const bareCpu = await stopServer(bareServer.proc);

  console.log(
    `gateway bench: ${BODY_BYTES}-byte signed issues.labeled, ${CONNECTIONS} connections, ${DURATION} s each, loopback`,
  );
  console.log(
    `verified + published: ${round(real.rps, 0)} req/s, p50 ${real.p50} ms, p99 ${real.p99} ms ` +
      `(${real.ok} answered 202, ${real.other} not); ` +
      `gateway CPU ${round(realCpu, 0)} µs/request, nats-server CPU ${round(natsCpu * 1e6, 0)} µs/request`,
  );
  console.log(
    `bare (no verify/publish): ${round(bare.rps, 0)} req/s, p50 ${bare.p50} ms, p99 ${bare.p99} ms ` +
      `(${bare.ok} answered 202, ${bare.other} not); ` +
      `gateway CPU ${round(bareCpu, 0)} µs/request`,
  );
  // Every 202 must be a stored ticket (all deliveries had distinct ids). autocannon stops counting
  // with up to one request per connection in flight, stored but not counted, per run.
  const acked = warm.ok + real.ok;
  const stored = info.state.messages;
  console.log(
    `durability: ${acked} deliveries answered 202, TICKETS holds ${stored} ` +
      `(${stored - acked} more were in flight when the load stopped)`,
  );
  if (stored < acked || stored > acked + 2 * CONNECTIONS)
    console.log("WARNING: acknowledged and stored tickets differ");
  console.log(`cost of the guarantees: bare/verified throughput = ${round(bare.rps / real.rps, 2)}x`);
  if (real.other > 0) console.log(`WARNING: ${real.other} verified requests did not get a 202`);
  console.log(
    `result: verified_rps=${round(real.rps, 0)} p50_ms=${real.p50} p99_ms=${real.p99} bare_rps=${round(bare.rps, 0)}`,
  );
} finally {
  await nats.stop();
  if (bundle) await rm(dirname(bundle), { recursive: true, force: true });
}

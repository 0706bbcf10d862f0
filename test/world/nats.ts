import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";

export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Process id of the running server (for CPU accounting in benchmarks). */
  pid: number | undefined;
  storeDir: string;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s). Removes the store only if startNats made it. */
  stop(): Promise<void>;
  /** Stops the server if it runs, then starts it again on the same port with the same store. */
  restart(): Promise<void>;
  /** Stops the server without removing the store (to simulate an outage; `restart()` brings it back). */
  kill(): Promise<void>;
}

export interface StartNatsOptions {
  /** JetStream store directory; a fresh temp dir when absent. */
  storeDir?: string;
}

const READY_TIMEOUT_MS = 15_000;

/**
 * Runs the real Debian `nats-server` with JetStream on loopback, on a port the server picks itself
 * (`-p -1`, so concurrent test files never race for a port).
 *
 * @example
 * const nats = await startNats();
 * // ... connect to nats.url
 * await nats.stop();
 */
export async function startNats({ storeDir }: StartNatsOptions = {}): Promise<NatsServer> {
  const bin = findNatsServer();
  const ownStore = storeDir === undefined;
  const store = storeDir ?? (await mkdtemp(join(tmpdir(), "agentfactory-nats-")));
  let port = -1;
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const proc = spawn(bin, ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", store], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    child = proc;
    port = await listeningPort(proc);
    await waitConnectable(`nats://127.0.0.1:${port}`);
  };

  const halt = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };

  await launch();
  return {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get pid() {
      return child?.pid;
    },
    storeDir: store,
    kill: halt,
    async restart() {
      await halt();
      await launch();
    },
    async stop() {
      await halt();
      if (ownStore) await rm(store, { recursive: true, force: true });
    },
  };
}

function findNatsServer(): string {
  for (const candidate of ["nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server"]) {
    const probe = spawnSync(candidate, ["--version"], { stdio: "ignore" });
    if (probe.status === 0) return candidate;
  }
  throw new Error("nats-server not found: run make deps (apt-get install nats-server)");
}

/** Reads the server log until it says which port it listens on (or it dies). */
function listeningPort(proc: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => fail(new Error(`nats-server did not start in time:\n${log}`)), READY_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      const match = /Listening for client connections on [^\s]*:(\d+)/.exec(log);
      if (match) done(Number(match[1]));
    };
    const onExit = (code: number | null) => fail(new Error(`nats-server exited with ${code}:\n${log}`));
    const cleanup = () => {
      clearTimeout(timer);
      proc.stderr?.off("data", onData);
      proc.off("exit", onExit);
      // Keep draining the log so a full pipe never blocks the server.
      proc.stderr?.resume();
    };
    const done = (port: number) => {
      cleanup();
      resolve(port);
    };
    const fail = (err: Error) => {
      cleanup();
      reject(err);
    };
    proc.stderr?.on("data", onData);
    proc.once("exit", onExit);
  });
}

async function waitConnectable(url: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      const nc = await connect({ servers: url, timeout: 1_000, reconnect: false });
      await nc.close();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`nats-server at ${url} not reachable: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

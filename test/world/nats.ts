import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ConnectionOptions, connect } from "@nats-io/transport-node";
import {
  NATS_CLIENTS,
  type NatsAuthOptions,
  type NatsClient,
  natsAuthOptions,
  natsAuthorizationConf,
  natsPasswordEnv,
  natsUser,
  natsUserConf,
} from "../../core/nats-auth.ts";

/** A production client, or the test world's own inspection user (all subjects; no product code uses it). */
export type NatsWorldUser = NatsClient | "admin";

export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Process id of the running server (for CPU accounting in benchmarks). */
  pid: number | undefined;
  storeDir: string;
  /** Whether the server enforces the users and permissions of core/nats-auth.ts (as the chart's does). */
  auth: boolean;
  /** Connect options for `user`: the URL, and with auth its name, password and inbox prefix. */
  options(user: NatsWorldUser): ConnectionOptions;
  /** The client's user, password and inbox prefix (`natsAuthOptions`), for `natsPublisher({ auth })` and the like. */
  clientAuth(client: NatsClient): NatsAuthOptions;
  /** The environment a process of `client` needs: NATS_URL, and with auth NATS_USER and NATS_PASSWORD. */
  env(client: NatsClient): Record<string, string>;
  /** The password of `user` ("" without auth), for tests that look for it in logs. */
  password(user: NatsWorldUser): string;
  /** The server's log lines that report a permissions violation, oldest first. */
  violations(): string[];
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
  /** Enforce the production users and permissions (default true, like production). */
  auth?: boolean;
  /**
   * A whole nats-server config to run instead (e.g. the chart's), with the environment it reads
   * (passwords). The port, address and store still come from the command line.
   */
  config?: {
    text: string;
    env: Record<string, string>;
    passwords: Partial<Record<NatsWorldUser, string>>;
    /** The CA file clients verify the server with, when the config enables TLS. */
    caFile?: string;
  };
}

const READY_TIMEOUT_MS = 15_000;

/**
 * Runs the real Debian `nats-server` with JetStream on loopback, on a port the server picks itself
 * (`-p -1`, so concurrent test files never race for a port). By default with the production
 * authorization block (core/nats-auth.ts), fresh passwords per server, and one extra `admin` user
 * the tests use to inspect or break streams.
 *
 * @example
 * const nats = await startNats();
 * const nc = await connect(nats.options("operator"));
 * await nats.stop();
 */
export async function startNats({ storeDir, auth = true, config }: StartNatsOptions = {}): Promise<NatsServer> {
  const bin = findNatsServer();
  const ownStore = storeDir === undefined;
  const store = storeDir ?? (await mkdtemp(join(tmpdir(), "agentfactory-nats-")));
  const confDir = await mkdtemp(join(tmpdir(), "agentfactory-nats-conf-"));
  const confFile = join(confDir, "nats.conf");
  const passwords: Partial<Record<NatsWorldUser, string>> = {};
  let port = -1;
  let serverEnv: Record<string, string> = {};
  const enforced = config !== undefined || auth;
  if (config) {
    await writeFile(confFile, config.text);
    serverEnv = config.env;
    Object.assign(passwords, config.passwords);
  } else if (auth) {
    for (const user of [...NATS_CLIENTS, "admin"] as const) passwords[user] = newPassword();
    serverEnv = Object.fromEntries(NATS_CLIENTS.map((c) => [natsPasswordEnv(c), passwords[c] as string]));
    serverEnv.NATS_WORLD_ADMIN_PASSWORD = passwords.admin as string;
    await writeFile(confFile, natsAuthorizationConf([natsUserConf("admin", "NATS_WORLD_ADMIN_PASSWORD")]));
  } else {
    await writeFile(confFile, "# no authorization\n");
  }
  const url = () => `nats://127.0.0.1:${port}`;
  const userOptions = (user: NatsWorldUser): ConnectionOptions => {
    if (!enforced) return { servers: url() };
    const pass = passwords[user];
    if (pass === undefined) throw new Error(`this NATS server has no password for ${user}`);
    const caFile = config?.caFile;
    if (user === "admin") return { servers: url(), user: "admin", pass, ...(caFile ? { tls: { caFile } } : {}) };
    return {
      servers: url(),
      ...natsAuthOptions(user, { NATS_USER: natsUser(user), NATS_PASSWORD: pass, NATS_TLS_CA_FILE: caFile }),
    };
  };
  let child: ChildProcess | undefined;
  const log: string[] = [];
  const users = Object.keys(passwords) as NatsWorldUser[];
  const probeUser = users.includes("admin") ? "admin" : users[0];

  const launch = async (): Promise<void> => {
    const proc = spawn(bin, ["-c", confFile, "-js", "-a", "127.0.0.1", "-p", String(port), "-sd", store], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { PATH: process.env.PATH, ...serverEnv },
    });
    child = proc;
    port = await listeningPort(proc, log);
    await waitConnectable(probeUser ? userOptions(probeUser) : { servers: url() });
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
      return url();
    },
    auth: enforced,
    options: userOptions,
    clientAuth(client) {
      const { servers: _url, ...auth } = userOptions(client);
      return auth as NatsAuthOptions;
    },
    env(client) {
      const o = userOptions(client);
      return {
        NATS_URL: url(),
        ...(o.user ? { NATS_USER: o.user } : {}),
        ...(o.pass ? { NATS_PASSWORD: o.pass } : {}),
        ...(config?.caFile ? { NATS_TLS_CA_FILE: config.caFile } : {}),
      };
    },
    password: (user) => passwords[user] ?? "",
    violations: () => log.filter((line) => /Violation/.test(line) && !/Authorization Violation/.test(line)),
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
      await rm(confDir, { recursive: true, force: true });
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

/** Fresh per server: letters and digits, starting with a letter (nats-server reads it as one config token). */
const newPassword = () => `p${randomBytes(24).toString("hex")}`;

/** Keeps at most this many server log lines. */
const LOG_LINES = 5_000;

/**
 * Reads the server log until it says which port it listens on (or it dies); afterwards keeps
 * collecting its lines into `lines`.
 */
function listeningPort(proc: ChildProcess, lines: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    let log = "";
    let partial = "";
    proc.stderr?.on("data", (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split("\n");
      partial = parts.pop() ?? "";
      lines.push(...parts);
      if (lines.length > LOG_LINES) lines.splice(0, lines.length - LOG_LINES);
    });
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

async function waitConnectable(options: ConnectionOptions): Promise<void> {
  const url = String(options.servers);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      const nc = await connect({ ...options, timeout: 1_000, reconnect: false });
      await nc.close();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`nats-server at ${url} not reachable: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

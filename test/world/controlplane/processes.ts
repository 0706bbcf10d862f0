/**
 * Control-plane processes: started with their output in a log file, waited on through an HTTPS health
 * endpoint, stopped with SIGTERM (SIGKILL after a grace period), or SIGKILLed and restarted for fault tests.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { join } from "node:path";
import { REPO_ROOT } from "../kube/server.ts";

export const BIN_DIR = join(REPO_ROOT, ".cache/bin");
export const COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"] as const;
export type Component = (typeof COMPONENTS)[number];

/** Throws a message saying how to install the control plane when a binary is missing. */
export function binaryPaths(binDir = BIN_DIR): Record<Component, string> {
  const paths = Object.fromEntries(COMPONENTS.map((c) => [c, join(binDir, c)])) as Record<Component, string>;
  const missing = COMPONENTS.filter((c) => !existsSync(paths[c]));
  if (missing.length > 0)
    throw new Error(
      `the Kubernetes control plane is not installed (${missing.join(", ")} missing in ${binDir}): ` +
        "run `make deps` (.ci/install-control-plane builds etcd and Kubernetes from Go modules)",
    );
  return paths;
}

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released for the component to bind). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface TlsClient {
  /** CA file; without it the server certificate is not verified (components' self-signed health ports). */
  ca?: string;
  cert?: string;
  key?: string;
}

/** GET over HTTPS with the given client identity: status and body (never throws on HTTP status). */
export function httpsGet(url: string, tls: TlsClient, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        ...(tls.ca ? { ca: readFileSync(tls.ca) } : { rejectUnauthorized: false }),
        ...(tls.cert ? { cert: readFileSync(tls.cert) } : {}),
        ...(tls.key ? { key: readFileSync(tls.key) } : {}),
        timeout: timeoutMs,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

export interface ProcessSpec {
  name: Component;
  bin: string;
  args: string[];
  logFile: string;
  /** Resolves when the process serves (polled until it does, or it exits). */
  ready: () => Promise<boolean>;
  /** How long to wait for readiness (default 60 s). */
  readyTimeoutMs?: number;
}

/** A running component; restartable with the same arguments. */
export class Managed {
  proc?: ChildProcess;
  private exited?: Promise<void>;
  private stopping = false;

  constructor(readonly spec: ProcessSpec) {}

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async start(): Promise<void> {
    this.stopping = false;
    const log = createWriteStream(this.spec.logFile, { flags: "a" });
    const proc = spawn(this.spec.bin, this.spec.args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp" },
    });
    proc.stdout?.pipe(log);
    proc.stderr?.pipe(log);
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once("close", () => resolve()));
    let exitedEarly = false;
    proc.once("exit", () => {
      exitedEarly = true;
    });
    const deadline = Date.now() + (this.spec.readyTimeoutMs ?? 60_000);
    while (Date.now() < deadline) {
      if (exitedEarly) break;
      if (await this.spec.ready().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    const tail = this.logTail(40);
    if (!exitedEarly) await this.kill();
    throw new Error(
      `${this.spec.name} ${exitedEarly ? `exited (${proc.exitCode ?? proc.signalCode})` : "did not become ready"}; ` +
        `last lines of ${this.spec.logFile}:\n${tail}`,
    );
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.proc!.kill("SIGTERM");
    const timer = setTimeout(() => this.proc?.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL, as a crash. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.proc!.kill("SIGKILL");
    await this.exited;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  get stoppedOnPurpose(): boolean {
    return this.stopping;
  }

  logTail(lines: number): string {
    try {
      return readFileSync(this.spec.logFile, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }
}

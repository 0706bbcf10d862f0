import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { Executor } from "./executor.ts";
import { LocalExecutor, type SweepScope } from "./local.ts";
import { SocketExecutor, WireRequest } from "./socket.ts";

export interface SandboxOptions {
  socketPath: string;
  /** Default: "namespace" where this process owns its PID namespace (see ownsPidNamespace), else "call". */
  sweep?: SweepScope;
  log?: (msg: string, data?: Record<string, unknown>) => void;
}

export interface Sandbox {
  scope: SweepScope;
  close(): Promise<void>;
}

/**
 * True in the sandbox container: this process is PID 1 of its namespace, or the child of the image's
 * init (runner-image/bin/agentfactory-init), which exports its own PID and is PID 1 only there. Never
 * true on a development machine, where sweeping the namespace would kill the user's other processes.
 */
export function ownsPidNamespace(env: Record<string, string | undefined> = process.env): boolean {
  return process.pid === 1 || (process.ppid === 1 && env.AGENTFACTORY_INIT_PID === "1");
}

/**
 * The sandbox: `node runner.mjs sandbox` in the stage pod's second container (its own uid, its own
 * PID namespace, no secret in its environment or mounts). Listens on a unix socket in a volume shared
 * with the runner, runs one call at a time as a fresh process group, and kills everything the call
 * left behind before it answers. HOME and TMPDIR are the sandbox's own, whatever the runner sends.
 */
export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const scope = opts.sweep ?? (ownsPidNamespace() ? "namespace" : "call");
  const exec = new LocalExecutor({ sweep: scope });
  // Files the agent creates in the shared workspace stay writable for the runner's group (fsGroup).
  process.umask(0o002);
  const own: Record<string, string> = { HOME: process.env.HOME ?? os.homedir(), TMPDIR: os.tmpdir() };
  fs.mkdirSync(path.dirname(opts.socketPath), { recursive: true });
  fs.rmSync(opts.socketPath, { force: true });
  let queue: Promise<unknown> = Promise.resolve();
  const server = net.createServer((sock) => {
    let buffer = "";
    let started = false;
    const calls = new AbortController();
    sock.on("close", () => calls.abort());
    sock.on("error", () => calls.abort());
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      if (started) return;
      buffer += chunk;
      const nl = buffer.indexOf("\n");
      if (nl < 0) {
        if (buffer.length > 64 * 1024 * 1024) sock.destroy();
        return;
      }
      started = true;
      let parsed: ReturnType<typeof WireRequest.safeParse>;
      try {
        parsed = WireRequest.safeParse(JSON.parse(buffer.slice(0, nl)));
      } catch {
        sock.destroy();
        return;
      }
      if (!parsed.success) {
        sock.destroy();
        return;
      }
      const req = parsed.data;
      // One call at a time: the sweep after a call must not find another call's processes.
      queue = queue.then(async () => {
        if (calls.signal.aborted) return;
        const result = await exec.run({ ...req, env: { ...req.env, ...own } }, calls.signal);
        opts.log?.("sandbox call", {
          exitCode: result.exitCode,
          signal: result.signal,
          timedOut: result.timedOut,
          aborted: calls.signal.aborted,
        });
        if (!sock.destroyed) sock.end(`${JSON.stringify(result)}\n`);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.socketPath, () => resolve());
  });
  // The runner connects through the shared group (the pod's fsGroup); no one else has the socket.
  fs.chmodSync(opts.socketPath, 0o770);
  opts.log?.("sandbox listening", { socket: opts.socketPath, sweep: scope, uid: process.getuid?.() });
  return {
    scope,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        queue.finally(() => fs.rmSync(opts.socketPath, { force: true }));
      }),
  };
}

/** The executor for this runner: the sandbox container when the pod has one, else local process groups. */
export function createExecutor(socketPath: string | undefined): Executor {
  return socketPath ? new SocketExecutor(socketPath) : new LocalExecutor();
}

import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import type { ExecRequest, ExecResult, Executor } from "./executor.ts";

/** One request per connection: a JSON line each way. */
export const WireRequest = z.object({
  command: z.string(),
  cwd: z.string(),
  env: z.record(z.string(), z.string()),
  timeoutMs: z.number().int().positive(),
  stdin: z.string().optional(),
  envFile: z.boolean().optional(),
});

export const WireResult = z.object({
  stdout: z.string(),
  stderr: z.string(),
  output: z.string(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  timedOut: z.boolean(),
  envFile: z.string().optional(),
});

export interface SocketExecutorOptions {
  /** How long to wait for the sandbox to listen (it starts beside the runner, and restarts if killed). */
  connectTimeoutMs?: number;
  /** Grace beyond a call's own timeout before the runner gives up on the sandbox's answer. */
  graceMs?: number;
}

/**
 * The runner's side of the sandbox: sends each command to the sandbox container over its unix socket
 * and waits for the result. Closing the connection (abort, or the runner giving up) makes the sandbox
 * kill the call.
 */
export class SocketExecutor implements Executor {
  readonly kind = "sandbox" as const;
  constructor(
    readonly socketPath: string,
    private readonly opts: SocketExecutorOptions = {},
  ) {}

  async run(req: ExecRequest, signal?: AbortSignal): Promise<ExecResult> {
    let sock: net.Socket;
    try {
      sock = await this.connect(signal);
    } catch (err) {
      return failure(`the sandbox is not reachable: ${(err as Error).message}`);
    }
    return new Promise<ExecResult>((resolve) => {
      let buffer = "";
      let done = false;
      const settle = (r: ExecResult) => {
        if (done) return;
        done = true;
        clearTimeout(guard);
        signal?.removeEventListener("abort", onAbort);
        sock.destroy();
        resolve(r);
      };
      const guard = setTimeout(
        () => settle({ ...failure("the sandbox did not answer in time"), timedOut: true }),
        req.timeoutMs + (this.opts.graceMs ?? 30_000),
      );
      const onAbort = () => settle(failure("aborted"));
      signal?.addEventListener("abort", onAbort, { once: true });
      sock.setEncoding("utf8");
      sock.on("data", (chunk: string) => {
        buffer += chunk;
        const nl = buffer.indexOf("\n");
        if (nl < 0) return;
        const parsed = WireResult.safeParse(safeJson(buffer.slice(0, nl)));
        settle(parsed.success ? parsed.data : failure("the sandbox sent an unreadable answer"));
      });
      sock.on("error", () => settle(failure("the sandbox connection failed during the call")));
      sock.on("close", () => settle(failure("the sandbox ended the call without an answer")));
      const wire: z.infer<typeof WireRequest> = {
        command: req.command,
        cwd: req.cwd,
        env: req.env,
        timeoutMs: req.timeoutMs,
        ...(req.stdin !== undefined ? { stdin: req.stdin } : {}),
        ...(req.envFile ? { envFile: true } : {}),
      };
      sock.write(`${JSON.stringify(wire)}\n`);
    });
  }

  /** Connects, retrying while the socket is missing or refuses (the sandbox is starting). */
  private async connect(signal?: AbortSignal): Promise<net.Socket> {
    const deadline = Date.now() + (this.opts.connectTimeoutMs ?? 60_000);
    for (let delay = 25; ; delay = Math.min(delay * 2, 500)) {
      try {
        return await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection({ path: this.socketPath });
          s.once("connect", () => {
            s.removeAllListeners("error");
            resolve(s);
          });
          s.once("error", reject);
        });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code !== "ENOENT" && code !== "ECONNREFUSED") || Date.now() > deadline || signal?.aborted) throw err;
        await sleep(delay);
      }
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function failure(message: string): ExecResult {
  return {
    stdout: "",
    stderr: `${message}\n`,
    output: `${message}\n`,
    exitCode: null,
    signal: "SIGKILL",
    timedOut: false,
  };
}

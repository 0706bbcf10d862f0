import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type ExecRequest, type ExecResult, type Executor, MAX_STREAM_BYTES } from "./executor.ts";

/** The environment variable that marks every process of one call (inherited through fork, exec and setsid). */
export const CALL_MARKER = "AGENTFACTORY_CALL";

/**
 * How the processes a call left behind are found once its shell has exited:
 * - "call": the call's process group and session, and every process carrying the call's marker in its
 *   environment (a `setsid` child keeps it). Best effort: a process that clears its environment
 *   (`env -i setsid …`) or makes itself undumpable escapes. For development and tests, where the
 *   runner shares the machine with other processes of its uid.
 * - "namespace": every process in the PID namespace but this one and its ancestors. Only where this
 *   process owns the namespace (the sandbox container: nothing else runs there), and then complete.
 */
export type SweepScope = "call" | "namespace";

export interface LocalExecutorOptions {
  sweep?: SweepScope;
  /** Rounds of stop-and-kill before giving up on a process that keeps forking. */
  maxRounds?: number;
}

/** Runs commands as local process groups of this process's uid: the runner's in development, the sandbox's in a pod. */
export class LocalExecutor implements Executor {
  readonly kind = "local" as const;
  private readonly sweep: SweepScope;
  private readonly maxRounds: number;

  constructor(opts: LocalExecutorOptions = {}) {
    this.sweep = opts.sweep ?? "call";
    this.maxRounds = opts.maxRounds ?? 50;
  }

  run(req: ExecRequest, signal?: AbortSignal): Promise<ExecResult> {
    const marker = randomUUID();
    const envDir = req.envFile ? fs.mkdtempSync(path.join(os.tmpdir(), "af-env-")) : undefined;
    const envFile = envDir ? path.join(envDir, "env") : undefined;
    if (envFile) fs.writeFileSync(envFile, "");
    return new Promise((resolve) => {
      // detached: a new session and process group, so the group can be killed as one.
      const child = spawn("bash", ["-c", req.command], {
        cwd: req.cwd,
        env: { ...req.env, [CALL_MARKER]: marker, ...(envFile ? { CLAUDE_ENV_FILE: envFile } : {}) },
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
      });
      const out = new Collector();
      const err = new Collector();
      const both = new Collector();
      child.stdout.on("data", (b: Buffer) => {
        out.add(b);
        both.add(b);
      });
      child.stderr.on("data", (b: Buffer) => {
        err.add(b);
        both.add(b);
      });
      child.stdin.on("error", () => {});
      child.stdin.end(req.stdin ?? "");
      let timedOut = false;
      let finished = false;
      const killAll = () => this.killCall(child.pid, marker);
      const timer = setTimeout(() => {
        timedOut = true;
        killAll();
      }, req.timeoutMs);
      const onAbort = () => killAll();
      signal?.addEventListener("abort", onAbort, { once: true });
      let spawnError: Error | undefined;
      child.on("error", (e) => {
        spawnError = e;
      });
      let status: { code: number | null; sig: NodeJS.Signals | null } | undefined;
      // When the shell exits, whatever it left running is killed: nothing outlives the call. A process
      // that escaped the sweep may still hold the pipes; the call ends anyway, shortly after.
      let drain: NodeJS.Timeout | undefined;
      child.on("exit", (code, sig) => {
        status = { code, sig };
        killAll();
        drain = setTimeout(() => finish(), 2000);
      });
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        clearTimeout(drain);
        signal?.removeEventListener("abort", onAbort);
        killAll();
        child.stdout.destroy();
        child.stderr.destroy();
        let envText: string | undefined;
        if (envDir && envFile) {
          envText = fs.existsSync(envFile) ? fs.readFileSync(envFile, "utf8") : "";
          fs.rmSync(envDir, { recursive: true, force: true });
        }
        const code = status?.code ?? child.exitCode;
        const sig = status?.sig ?? child.signalCode;
        const stderr = err.text() + (spawnError ? `${spawnError.message}\n` : "");
        resolve({
          stdout: out.text(),
          stderr,
          output: both.text() + (spawnError ? `${spawnError.message}\n` : ""),
          exitCode: code ?? (sig ? null : 127),
          signal: sig ?? null,
          timedOut,
          ...(envText !== undefined ? { envFile: envText } : {}),
        });
      };
      child.on("close", finish);
    });
  }

  /** Kills the call's process group, then every survivor the sweep finds, until none is left. */
  private killCall(leader: number | undefined, marker: string): void {
    if (leader) signalSafe(-leader, "SIGKILL");
    for (let round = 0; round < this.maxRounds; round++) {
      const found = survivors(this.sweep, leader, marker);
      if (!found.length) return;
      // Stop first, so a process cannot fork between being found and being killed.
      for (const pid of found) signalSafe(pid, "SIGSTOP");
      for (const pid of found) signalSafe(pid, "SIGKILL");
    }
  }
}

function signalSafe(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already, or not ours
  }
}

interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
}

/** Fields of /proc/<pid>/stat (the command name may contain spaces and parentheses). */
export function procStat(pid: number | string): ProcStat | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: rest[0] ?? "", ppid: Number(rest[1]), pgrp: Number(rest[2]), session: Number(rest[3]) };
  } catch {
    return undefined;
  }
}

function ancestors(): Set<number> {
  const seen = new Set<number>([process.pid]);
  let pid = process.ppid;
  while (pid > 0 && !seen.has(pid)) {
    seen.add(pid);
    pid = procStat(pid)?.ppid ?? 0;
  }
  return seen;
}

/** Live processes (not zombies) the sweep scope says belong to the call. */
export function survivors(scope: SweepScope, leader: number | undefined, marker: string): number[] {
  const keep = ancestors();
  const needle = Buffer.from(`${CALL_MARKER}=${marker}\0`);
  const found: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync("/proc");
  } catch {
    return [];
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (keep.has(pid)) continue;
    const stat = procStat(pid);
    if (!stat || stat.state === "Z" || stat.state === "X") continue;
    if (scope === "namespace") {
      found.push(pid);
      continue;
    }
    if (leader && (stat.pgrp === leader || stat.session === leader)) {
      found.push(pid);
      continue;
    }
    try {
      const environ = fs.readFileSync(`/proc/${pid}/environ`);
      if (environ.includes(needle)) found.push(pid);
    } catch {
      // another uid's process, or gone
    }
  }
  return found;
}

class Collector {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  add(b: Buffer): void {
    if (this.size < MAX_STREAM_BYTES) this.chunks.push(b);
    this.size += b.length;
  }
  text(): string {
    const text = Buffer.concat(this.chunks).toString("utf8");
    return this.size > MAX_STREAM_BYTES ? `${text}\n… [${this.size - MAX_STREAM_BYTES} more bytes dropped]` : text;
  }
}

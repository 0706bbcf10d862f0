import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AttemptClaims, attemptTokenKey, issueAttemptToken } from "../../core/attempt-token.ts";

/** egress/main.ts as a process (the real deployable), configured by environment, on loopback. */

export const ATTEMPT_KEY = "egress-test-attempt-key-0123456789abcdef";
export const ADMIN_TOKEN = "egress-test-admin-token-0123456789";
/** Shaped like a real key, so a leak would also be caught by pattern. */
export const PROVIDER_KEY = "sk-ant-api03-EgressTestProviderKey0123456789abcdefghij";

export interface EgressProc {
  url: string;
  pid: number | undefined;
  adminUrl: string;
  port: number;
  /** Every stdout/stderr line so far. */
  logs: string[];
  /** Parsed JSON log lines. */
  entries(): Record<string, unknown>[];
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/** `bundle`: run an esbuild bundle of egress/main.ts with plain node (as the image does) instead of tsx. */
export async function startEgress(env: Record<string, string>, opts: { bundle?: string } = {}): Promise<EgressProc> {
  const cache = await mkdtemp(join(tmpdir(), "egress-cache-"));
  const args = opts.bundle ? [opts.bundle] : ["--import", "tsx", "egress/main.ts"];
  const proc: ChildProcess = spawn(process.execPath, args, {
    env: {
      PATH: process.env.PATH,
      HOST: "127.0.0.1",
      PORT: "0",
      ADMIN_PORT: "0",
      METRICS_PORT: "0",
      ATTEMPT_TOKEN_KEY: ATTEMPT_KEY,
      ADMIN_TOKEN: ADMIN_TOKEN,
      MODEL_API_KEY: PROVIDER_KEY,
      GIT_CACHE_DIR: cache,
      LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  let buffer = "";
  proc.stderr?.on("data", (chunk) => logs.push(String(chunk)));
  const ports = await new Promise<{ port: number; adminPort: number; metricsPort: number }>((resolve, reject) => {
    proc.once("exit", (code) => reject(new Error(`egress exited with ${code}:\n${logs.join("\n")}`)));
    proc.stdout?.on("data", (chunk) => {
      buffer += String(chunk);
      const parts = buffer.split("\n");
      buffer = parts.pop() ?? "";
      for (const line of parts) {
        logs.push(line);
        try {
          const entry = JSON.parse(line);
          if (entry.event === "listening")
            resolve({ port: entry.port, adminPort: entry.adminPort, metricsPort: entry.metricsPort });
        } catch {}
      }
    });
  });
  const url = `http://127.0.0.1:${ports.port}`;
  const adminUrl = `http://127.0.0.1:${ports.adminPort}`;
  return {
    url,
    pid: proc.pid,
    adminUrl,
    port: ports.port,
    logs,
    entries: () =>
      logs.flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    metrics: async () => (await fetch(`http://127.0.0.1:${ports.metricsPort}/metrics`)).text(),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(cache, { recursive: true, force: true });
    },
  };
}

/** Waits until the log holds a line matching `test` (logs are written after the response ends). */
export async function logged(
  egress: EgressProc,
  test: (entry: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200; i++) {
    const hit = egress.entries().find(test);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no such log line; have:\n${egress.logs.slice(-20).join("\n")}`);
}

export interface Run {
  namespace: string;
  name: string;
  uid: string;
}

export function claimsFor(run: Run, over: Partial<AttemptClaims> = {}): AttemptClaims {
  return {
    run,
    stage: "write",
    attempt: 1,
    repo: "acme/calc",
    branch: "agent/1-fix-add",
    ...over,
  };
}

export function tokenFor(claims: AttemptClaims, opts: { ttlSeconds?: number; now?: Date; key?: string } = {}) {
  return issueAttemptToken(claims, attemptTokenKey(opts.key ?? ATTEMPT_KEY), {
    ttlSeconds: opts.ttlSeconds ?? 600,
    ...(opts.now ? { now: opts.now } : {}),
  });
}

export interface RunView {
  budgetUsd: number;
  spentUsd: number;
  heldUsd: number;
  remainingUsd: number;
  refused: number;
  stages: Record<
    string,
    {
      attempt: number;
      spentUsd: number;
      requests: number;
      refused: number;
      ended: boolean;
      forgeToken: boolean;
      tokens: { input: number; output: number; cacheRead: number; cacheWrite: number };
    }
  >;
}

/** The operator's call before a stage Job starts. */
export async function reserve(
  adminUrl: string,
  claims: AttemptClaims,
  body: { budgetUsd: number; forgeToken?: string },
  adminToken = ADMIN_TOKEN,
): Promise<{ status: number; view: RunView }> {
  const res = await fetch(
    `${adminUrl}/admin/v1/runs/${claims.run.namespace}/${claims.run.name}/stages/${claims.stage}`,
    {
      method: "PUT",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({
        uid: claims.run.uid,
        attempt: claims.attempt,
        repo: claims.repo,
        branch: claims.branch,
        ...body,
      }),
    },
  );
  return { status: res.status, view: (await res.json()) as RunView };
}

export async function readRun(adminUrl: string, run: Run): Promise<RunView> {
  const res = await fetch(`${adminUrl}/admin/v1/runs/${run.namespace}/${run.name}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (res.status !== 200) throw new Error(`GET run: ${res.status} ${await res.text()}`);
  return (await res.json()) as RunView;
}

export async function endAttempt(adminUrl: string, claims: AttemptClaims): Promise<number> {
  const res = await fetch(
    `${adminUrl}/admin/v1/runs/${claims.run.namespace}/${claims.run.name}/stages/${claims.stage}`,
    { method: "DELETE", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
  );
  await res.body?.cancel();
  return res.status;
}

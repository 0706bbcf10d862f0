import { type ChildProcess, spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsServer, startNats } from "../world/nats.ts";

// gateway/main.ts as a process: configuration from the environment, readiness, a dispatch, logs
// without secrets, and a graceful SIGTERM.
const SECRETS = {
  GITHUB_WEBHOOK_SECRET: "main-test-github-secret",
  DISPATCH_TOKEN: "main-test-dispatch-token",
  GITHUB_APP_PRIVATE_KEY: generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({
    type: "pkcs1",
    format: "pem",
  }) as string,
};

describe("gateway/main.ts", () => {
  let nats: NatsServer;
  let proc: ChildProcess;
  let port = 0;
  const lines: string[] = [];

  beforeAll(async () => {
    nats = await startNats();
    proc = spawn(process.execPath, ["--import", "tsx", "gateway/main.ts"], {
      env: {
        PATH: process.env.PATH,
        ...SECRETS,
        GITHUB_APP_ID: "1",
        ...nats.env("gateway"),
        PORT: "0",
        HOST: "127.0.0.1",
        BODY_LIMIT_BYTES: "4096",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let buffer = "";
    proc.stderr?.on("data", (chunk) => lines.push(String(chunk)));
    port = await new Promise<number>((resolve, reject) => {
      proc.once("exit", (code) => reject(new Error(`gateway exited with ${code}: ${lines.join("")}`)));
      proc.stdout?.on("data", (chunk) => {
        buffer += String(chunk);
        const parts = buffer.split("\n");
        buffer = parts.pop() ?? "";
        for (const line of parts) {
          lines.push(line);
          const entry = JSON.parse(line);
          if (entry.event === "listening") resolve(entry.port);
        }
      });
    });
  });
  afterAll(async () => {
    if (proc && proc.exitCode === null) proc.kill("SIGKILL");
    await nats?.stop();
  });

  it("serves, publishes a dispatch, logs without secrets and stops cleanly on SIGTERM", async () => {
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    for (let i = 0; (await fetch(`${base}/readyz`)).status !== 200; i++) {
      if (i > 100) throw new Error("gateway never became ready");
      await new Promise((r) => setTimeout(r, 50));
    }
    const res = await fetch(`${base}/dispatch`, {
      method: "POST",
      headers: { authorization: `Bearer ${SECRETS.DISPATCH_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ repo: "acme/widgets", title: "Add CSV export" }),
    });
    expect(res.status).toBe(202);
    expect(((await res.json()) as { id: string }).id).toMatch(/^dispatch:/);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('agentfactory_webhooks_total{source="dispatch",event="new",result="accepted"} 1');
    expect(metrics).toContain("nodejs_eventloop_lag_seconds");
    expect((await fetch(`${base}/webhooks/clickup`, { method: "POST", body: "{}" })).status).toBe(404);
    const big = await fetch(`${base}/dispatch`, {
      method: "POST",
      headers: { authorization: `Bearer ${SECRETS.DISPATCH_TOKEN}` },
      body: JSON.stringify({ repo: "acme/widgets", title: "x".repeat(5000) }),
    });
    expect(big.status).toBe(413);
    const unsigned = await fetch(`${base}/webhooks/github`, {
      method: "POST",
      headers: { "x-github-event": "issues", "x-github-delivery": "d" },
      body: "{}",
    });
    expect(unsigned.status).toBe(401);

    proc.kill("SIGTERM");
    const [code] = await once(proc, "exit");
    expect(code).toBe(0);
    const log = lines.join("\n");
    expect(log).toContain('"event":"stopped"');
    expect(log).toContain('"result":"accepted"');
    // The gateway logs its whole configuration at start: the NATS password must show as redacted.
    expect(nats.password("gateway")).toMatch(/^p[0-9a-f]{48}$/);
    expect(log).toContain('"NATS_PASSWORD":"[redacted]"');
    for (const secret of [...Object.values(SECRETS), nats.password("gateway")]) {
      expect(log).not.toContain(secret.length > 200 ? secret.slice(100, 160) : secret);
    }
  });
});

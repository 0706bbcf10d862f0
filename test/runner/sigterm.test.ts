/**
 * The runner as the pod runs it (`node --import tsx main.ts`, PID 1 of its container): SIGTERM in the middle of a
 * stage (here: waiting on a forge and model that never answer) writes a typed "Terminated" result to the
 * termination log and exits 143 at once, instead of waiting for the kubelet's SIGKILL with no result.
 */
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decodeResult } from "../../core/result.ts";
import { ROOT, TEST_MODEL_KEY, ticketFor } from "./harness.ts";

const held: IncomingMessage[] = [];
let server: Server;
afterAll(async () => {
  for (const r of held) r.socket.destroy();
  await new Promise((r) => server?.close(r));
});

describe("the runner on SIGTERM", () => {
  it("writes a Terminated result and exits 143 while the stage is still waiting", async () => {
    let firstRequest!: () => void;
    const requested = new Promise<void>((r) => {
      firstRequest = r;
    });
    // Answers nothing: the stage blocks on its first call to the forge or the model.
    server = createServer((req) => {
      held.push(req);
      firstRequest();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address() as { port: number };
    const url = `http://127.0.0.1:${addr.port}`;
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "af-sigterm-"));
    await fs.mkdir(path.join(dir, "workspace"));
    await fs.mkdir(path.join(dir, "home"));
    const terminationLog = path.join(dir, "termination-log");
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "runner-image/src/main.ts")], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: path.join(dir, "home"),
        AGENTFACTORY_WORKSPACE: path.join(dir, "workspace"),
        AGENTFACTORY_TERMINATION_LOG: terminationLog,
        AGENTFACTORY_ATTEMPT: "1",
        AGENTFACTORY_REQUEST_ID: "req-sigterm",
        AGENTFACTORY_STAGE: "triage",
        AGENTFACTORY_RUN: "calc-1-abc",
        AGENTFACTORY_TICKET: JSON.stringify(ticketFor("acme/calc", 1, "Fix add", "add subtracts")),
        AGENTFACTORY_MODEL: "claude-sonnet-4-6",
        AGENTFACTORY_BUDGET_USD: "1",
        GITHUB_API_URL: url,
        GITHUB_SERVER_URL: url,
        GITHUB_TOKEN: "ghs_0123456789abcdef0123456789abcdef0123",
        ANTHROPIC_API_KEY: TEST_MODEL_KEY,
        ANTHROPIC_BASE_URL: url,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    child.stdout.resume();
    const closed = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    await Promise.race([requested, closed.then(() => Promise.reject(new Error(`runner exited early: ${stderr}`)))]);
    child.kill("SIGTERM");
    expect(await closed).toBe(143);
    const decoded = decodeResult(await fs.readFile(terminationLog, "utf8"));
    expect(decoded.ok && decoded.result).toMatchObject({
      stage: "triage",
      outcome: "failed",
      failure: "Terminated",
      summary: "terminated by SIGTERM before the stage finished",
    });
  }, 60_000);
});

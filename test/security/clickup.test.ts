/**
 * Issue 14, item 5: anyone who can edit a ClickUp task can set its repository field, which used to win
 * over the list → repository map, so any ClickUp user could aim the factory at any repository the App
 * is installed on. Played through the real gateway process (gateway/main.ts, configured from its
 * environment), signed ClickUp webhooks over HTTP, the ClickUp simulator and a real nats-server: only
 * tasks in mapped lists are accepted, and the field may only choose a repository allowlisted for the list.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TICKETS_STREAM } from "../../core/streams.ts";
import { Ticket } from "../../core/ticket.ts";
import { type ClickUpSim, sendClickUpWebhook, startClickUpSim, taskTagUpdated } from "../world/clickup/index.ts";
import { type NatsServer, startNats } from "../world/nats.ts";

const SECRET = "security-clickup-webhook-secret";
const TOKEN = "pk_security_clickup_token";
const LIST = "901";
const REPO = "acme/web";
const ALLOWED = "acme/web-docs";
const TARGET = "acme/payments"; // installed, but not this list's

const field = (value: string) => [{ name: "Repository", type: "short_text", value }];
const TASKS = [
  { id: "86mapped", name: "Mapped task", listId: LIST, tags: ["ai-agent"] },
  { id: "86allowed", name: "Allowed choice", listId: LIST, customFields: field(ALLOWED) },
  { id: "86unmapped", name: "Unmapped list", listId: "555" },
  { id: "86unmapped-field", name: "Unmapped list naming the mapped repo", listId: "555", customFields: field(REPO) },
  { id: "86override", name: "Field aims elsewhere", listId: LIST, customFields: field(TARGET) },
  {
    id: "86override-url",
    name: "Field aims elsewhere by URL",
    listId: LIST,
    customFields: field(`https://github.com/${TARGET.toUpperCase()}.git`),
  },
];

describe("ClickUp tasks choose no repository the configuration did not allow", () => {
  let nats: NatsServer;
  let cu: ClickUpSim;
  let proc: ChildProcess;
  let base = "";
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    [nats, cu] = await Promise.all([startNats(), startClickUpSim({ token: TOKEN, tasks: TASKS })]);
    proc = spawn(process.execPath, ["--import", "tsx", "gateway/main.ts"], {
      env: {
        PATH: process.env.PATH,
        ...nats.env("gateway"),
        PORT: "0",
        HOST: "127.0.0.1",
        CLICKUP_WEBHOOK_SECRET: SECRET,
        CLICKUP_API_TOKEN: TOKEN,
        CLICKUP_API_URL: cu.apiUrl,
        CLICKUP_REPO_MAP: JSON.stringify({ [LIST]: REPO }),
        CLICKUP_REPO_ALLOWLIST: JSON.stringify({ [LIST]: [ALLOWED] }),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let buffer = "";
    const port = await new Promise<number>((resolve, reject) => {
      proc.once("exit", (code) => reject(new Error(`gateway exited with ${code}`)));
      proc.stdout?.on("data", (chunk) => {
        buffer += String(chunk);
        const parts = buffer.split("\n");
        buffer = parts.pop() ?? "";
        for (const line of parts) {
          const entry = JSON.parse(line) as Record<string, unknown>;
          lines.push(entry);
          if (entry.event === "listening") resolve(entry.port as number);
        }
      });
    });
    base = `http://127.0.0.1:${port}`;
    for (let i = 0; (await fetch(`${base}/readyz`)).status !== 200; i++) {
      if (i > 200) throw new Error("gateway never became ready");
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 60_000);

  afterAll(async () => {
    if (proc && proc.exitCode === null) proc.kill("SIGKILL");
    await Promise.all([nats?.stop(), cu?.stop()]);
  });

  const deliver = async (taskId: string) => {
    const payload = taskTagUpdated({ taskId, tags: ["ai-agent"] });
    const res = await sendClickUpWebhook(`${base}/webhooks/clickup`, SECRET, payload);
    return {
      status: res.status,
      body: (await res.json()) as Record<string, string>,
      historyId: payload.history_items[0]!.id,
    };
  };

  /** Every ticket in the TICKETS stream. */
  const published = async (): Promise<Ticket[]> => {
    const nc = await connect(nats.options("admin"));
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(TICKETS_STREAM).catch(() => undefined);
      const out: Ticket[] = [];
      if (!info) return out;
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const msg = await jsm.streams.getMessage(TICKETS_STREAM, { seq }).catch(() => undefined);
        if (msg) out.push(Ticket.parse(msg.json()));
      }
      return out;
    } finally {
      await nc.close();
    }
  };
  const flushLogs = async () => {
    // The gateway buffers log lines and flushes them at least every 500 ms.
    const before = lines.length;
    for (let i = 0; i < 40 && lines.length === before; i++) await new Promise((r) => setTimeout(r, 50));
  };

  it("positive control: a mapped list's task, and a field choosing an allowlisted repository, are published", async () => {
    const mapped = await deliver("86mapped");
    const allowed = await deliver("86allowed");
    expect([mapped.status, allowed.status]).toEqual([202, 202]);
    const tickets = await published();
    expect(tickets.find((t) => t.workItem === "86mapped")?.repo).toBe(REPO);
    expect(tickets.find((t) => t.workItem === "86allowed")?.repo).toBe(ALLOWED);
  });

  it.each([
    ["a task in an unmapped list", "86unmapped", "unmapped_list"],
    ["an unmapped list's task whose field names the mapped repository", "86unmapped-field", "unmapped_list"],
    ["a mapped list's task whose field names another repository", "86override", "repository_not_allowed"],
    ["the same by URL, in another case", "86override-url", "repository_not_allowed"],
  ])("refuses %s: nothing is published, the refusal is logged and counted", async (_name, taskId, reason) => {
    const answer = await deliver(taskId);
    expect(answer.status).toBe(202);
    expect(answer.body.refused).toMatch(new RegExp(`^${reason}: `));
    expect(answer.body).not.toHaveProperty("id");

    const tickets = await published();
    expect(tickets.filter((t) => t.workItem === taskId)).toEqual([]);
    expect(tickets.some((t) => t.repo === TARGET)).toBe(false);
    expect(tickets.some((t) => t.id === `clickup:${answer.historyId}`)).toBe(false);

    await flushLogs();
    const refusal = lines.find(
      (l) => l.level === 40 && String(l.reason).startsWith(`${reason}: `) && l.event === "taskTagUpdated",
    );
    expect(refusal, JSON.stringify(lines.slice(-5))).toBeDefined();
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`agentfactory_clickup_refused_total\\{reason="${reason}"\\} [1-9]`));
    expect(metrics).toMatch(
      /agentfactory_webhooks_total\{source="clickup",event="taskTagUpdated",result="refused"\} [1-9]/,
    );
  });

  it("published exactly the two allowed tickets, for the allowed repositories", async () => {
    const tickets = await published();
    expect(tickets.map((t) => [t.workItem, t.repo]).sort()).toEqual([
      ["86allowed", ALLOWED],
      ["86mapped", REPO],
    ]);
  });
});

import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TICKETS_STREAM } from "../../core/streams.ts";
import { Ticket } from "../../core/ticket.ts";
import { createApp } from "../../gateway/app.ts";
import { natsPublisher } from "../../gateway/publisher.ts";
import { ensureStreams } from "../../operator/consumer.ts";
import { type NatsServer, startNats } from "../world/nats.ts";
import { issuesPayload, memoryLogger, signGitHub } from "./fakes.ts";

const SECRET = "integration-secret";

describe("gateway → real NATS JetStream", () => {
  let nats: NatsServer;
  let publisher: ReturnType<typeof natsPublisher>;
  let app: ReturnType<typeof createApp>;

  beforeAll(async () => {
    nats = await startNats();
    const { logger } = memoryLogger("silent");
    publisher = natsPublisher({
      servers: nats.url,
      auth: nats.clientAuth("gateway"),
      logger,
      publishTimeoutMs: 1_000,
      reconnectWaitMs: 100,
    });
    await publisher.connected;
    app = createApp({
      publisher,
      logger,
      config: { github: { webhookSecret: SECRET, triggerLabel: "ai-agent" }, bodyLimitBytes: 1 << 20 },
      now: () => new Date("2026-01-02T03:04:05.000Z"), // the fixtures' events are minutes old
    });
  });
  afterAll(async () => {
    await publisher?.close();
    await nats?.stop();
  });

  const deliver = (delivery: string, number = 1, requestId = `req-${delivery}`) => {
    const body = JSON.stringify(issuesPayload({ number }));
    return app.request("/webhooks/github", {
      method: "POST",
      body,
      headers: {
        "x-github-event": "issues",
        "x-github-delivery": delivery,
        "x-hub-signature-256": signGitHub(SECRET, body),
        "x-request-id": requestId,
      },
    });
  };
  // A fresh connection per look, retried: JetStream needs a moment after a restart.
  const stored = async () => {
    for (let attempt = 0; ; attempt++) {
      const nc = await connect(nats.options("admin"));
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2_000 });
        const info = await jsm.streams.info(TICKETS_STREAM);
        const messages = [];
        for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
          const msg = await jsm.streams.getMessage(TICKETS_STREAM, { seq });
          if (msg) messages.push(msg);
        }
        return { info, messages };
      } catch (err) {
        if (attempt >= 5) throw err;
      } finally {
        await nc.close();
      }
    }
  };

  /** The delivery id each stored ticket came with (Nats-Msg-Id names the event, not the delivery). */
  const deliveryOf = (m: { json(): unknown }) => Ticket.parse(m.json()).deliveryId;

  it("creates TICKETS on file storage with a 73-hour duplicate window (GitHub's redelivery horizon and slack)", async () => {
    const { info } = await stored();
    expect(info.config.storage).toBe("file");
    expect(info.config.subjects).toEqual(["tickets.>"]);
    expect(info.config.duplicate_window).toBe(73 * 3600 * 1_000_000_000);
  });

  it("publishes a redelivered webhook once; the ticket carries Nats-Msg-Id and X-Request-Id", async () => {
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await deliver("dup-1"));
    expect(answers.map((r) => r.status)).toEqual([202, 202, 202]);
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as {
      id: string;
      duplicate: boolean;
      seq: number;
    }[];
    expect(bodies.map((b) => b.duplicate)).toEqual([false, true, true]);
    expect(new Set(bodies.map((b) => b.seq)).size).toBe(1);

    const id = bodies[0]!.id;
    const { messages } = await stored();
    const mine = messages.filter((m) => m.header?.get("Nats-Msg-Id") === id);
    expect(mine).toHaveLength(1);
    const msg = mine[0]!;
    expect(msg.subject).toBe("tickets.github.new");
    expect(msg.header?.get("X-Request-Id")).toBe("req-dup-1");
    const ticket = Ticket.parse(msg.json());
    expect(ticket).toMatchObject({ id, deliveryId: "dup-1", kind: "new", workItem: "gh-1", requestId: "req-dup-1" });
  });

  it("answers 503 while NATS is stopped, and after the restart accepts the redelivery with nothing lost", async () => {
    for (let i = 0; i < 3; i++) expect((await deliver(`before-${i}`, 10 + i)).status).toBe(202);
    const before = (await stored()).info.state.messages;

    await nats.kill();
    const down = await deliver("during", 20);
    expect(down.status).toBe(503);
    await waitFor(async () => (await app.request("/readyz")).status === 503);
    expect((await deliver("during", 20)).status).toBe(503);

    await nats.restart();
    await waitFor(async () => (await app.request("/readyz")).status === 200);
    const again = await deliver("during", 20);
    expect(again.status).toBe(202);

    const { info, messages } = await stored();
    // Everything acked before the outage survived it (file storage), plus the redelivered one, once.
    expect(info.state.messages).toBe(before + 1);
    const ids = messages.map(deliveryOf);
    expect(ids).toEqual(expect.arrayContaining(["before-0", "before-1", "before-2", "during"]));
    expect(ids.filter((id) => id === "during")).toHaveLength(1);
  });

  it("re-creates a deleted TICKETS stream: 503 for the delivery that found it missing, then accepted", async () => {
    const nc = await connect(nats.options("admin"));
    await (await jetstreamManager(nc)).streams.delete(TICKETS_STREAM);
    await nc.close();
    expect((await deliver("after-delete", 30)).status).toBe(503);
    await waitFor(async () => (await app.request("/readyz")).status === 200);
    expect((await deliver("after-delete", 30)).status).toBe(202);
    const { info, messages } = await stored();
    expect(info.config.storage).toBe("file");
    expect(messages.map(deliveryOf)).toEqual(["after-delete"]);
  });

  it("uses a TICKETS stream made with another configuration as it is; the operator brings it in line", async () => {
    const admin = await connect(nats.options("admin"));
    const jsm = await jetstreamManager(admin);
    await jsm.streams.delete(TICKETS_STREAM);
    await jsm.streams.add({ name: TICKETS_STREAM, subjects: ["tickets.>"], duplicate_window: 30_000_000_000 });
    const { logger, lines } = memoryLogger("info");
    const second = natsPublisher({ servers: nats.url, auth: nats.clientAuth("gateway"), logger, reconnectWaitMs: 100 });
    try {
      await second.connected;
      expect(second.ready()).toBe(true);
      expect(lines.some((l) => l.includes("nats_stream_config_differs"))).toBe(true);
      expect((await jsm.streams.info(TICKETS_STREAM)).config.duplicate_window).toBe(30_000_000_000);
      // The operator, which owns the streams' configuration, restores the 73-hour window.
      const operator = await connect(nats.options("operator"));
      await ensureStreams(await jetstreamManager(operator));
      await operator.close();
      expect((await jsm.streams.info(TICKETS_STREAM)).config.duplicate_window).toBe(73 * 3600 * 1_000_000_000);
    } finally {
      await second.close();
      await admin.close();
    }
  });

  it("needed nothing beyond the gateway's NATS permissions (no violation in the server log)", () => {
    expect(nats.auth).toBe(true);
    expect(nats.violations()).toEqual([]);
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

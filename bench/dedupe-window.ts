/**
 * `make bench-dedupe`: what the 73-hour duplicate window of TICKETS costs the broker. JetStream keeps
 * every Nats-Msg-Id seen inside the window in memory; with ticket ids derived from the signed event
 * (issue 14, item 8) and a window as long as GitHub's redelivery horizon, each ticket of the last three
 * days holds one entry. Two real nats-servers (file storage, as in production) take the same tickets:
 * one with ids (a 73 h window) and one without, so the difference of their resident memory is the
 * window's. Prints both, the cost per ticket and a projection; the last line is machine-readable.
 *
 * TICKETS=100000 (default) sets how many tickets each server takes.
 */
import { readFileSync } from "node:fs";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, nanos } from "@nats-io/transport-node";
import { TICKETS_DUPLICATE_WINDOW_MS, TICKETS_STREAM, TICKETS_SUBJECTS, ticketSubject } from "../core/streams.ts";
import { type Ticket, ticketId } from "../core/ticket.ts";
import { type NatsServer, startNats } from "../test/world/nats.ts";

const COUNT = Number(process.env.TICKETS ?? 100_000);
const BATCH = 1_000;

function ticket(i: number): Ticket {
  const id = ticketId("github", ["acme/web", i, "issues.labeled", "ai-agent", new Date(1e12 + i * 1000).toISOString()]);
  return {
    id,
    kind: "new",
    source: "github",
    deliveryId: `0b5e${i.toString(16).padStart(8, "0")}-1f2e-11ef-8000-000000000000`,
    requestId: `req-${i}`,
    receivedAt: new Date().toISOString(),
    repo: "acme/web",
    number: i,
    workItem: `gh-${i}`,
    url: `https://github.com/acme/web/issues/${i}`,
    title: `Add a health endpoint (${i})`,
    body: "Please add GET /healthz returning 200 and the build version. ".repeat(6),
    author: "alice",
    labels: ["ai-agent"],
    installationId: 1234567,
  };
}

const rssBytes = (pid: number | undefined): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
};

/** Publishes COUNT tickets into a fresh TICKETS stream; with ids or without. Returns the server's RSS after. */
async function fill(server: NatsServer, withIds: boolean): Promise<{ rss: number; idle: number; seconds: number }> {
  const nc = await connect({ servers: server.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: TICKETS_STREAM,
    subjects: TICKETS_SUBJECTS,
    storage: "file" as never,
    duplicate_window: nanos(TICKETS_DUPLICATE_WINDOW_MS),
  });
  const idle = rssBytes(server.pid);
  const js = jetstream(nc, { timeout: 30_000 });
  const started = performance.now();
  for (let from = 0; from < COUNT; from += BATCH) {
    const acks = [];
    for (let i = from; i < Math.min(COUNT, from + BATCH); i++) {
      const t = ticket(i);
      acks.push(js.publish(ticketSubject(t.source, t.kind), JSON.stringify(t), withIds ? { msgID: t.id } : {}));
    }
    const done = await Promise.all(acks);
    if (done.some((a) => a.duplicate)) throw new Error("unexpected duplicate");
  }
  const seconds = (performance.now() - started) / 1000;
  // A replay of the first ticket inside the window is dropped (with ids), stored again (without).
  const again = await js.publish(
    ticketSubject("github", "new"),
    JSON.stringify(ticket(0)),
    withIds ? { msgID: ticket(0).id } : {},
  );
  if (again.duplicate !== withIds) throw new Error(`replay duplicate=${again.duplicate}, expected ${withIds}`);
  await nc.close();
  // Let the file store's block caches expire (they hold recent messages either way), then measure.
  await new Promise((r) => setTimeout(r, 12_000));
  return { rss: rssBytes(server.pid), idle, seconds };
}

async function main(): Promise<void> {
  // The broker alone: no users (authorization does not change what the duplicate window holds).
  const withIds = await startNats({ auth: false });
  const withoutIds = await startNats({ auth: false });
  try {
    const a = await fill(withIds, true);
    const b = await fill(withoutIds, false);
    const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
    const perTicket = Math.max(0, Math.round((a.rss - a.idle - (b.rss - b.idle)) / COUNT));
    console.log(
      `tickets per server:             ${COUNT} (duplicate window ${TICKETS_DUPLICATE_WINDOW_MS / 3600_000} h)`,
    );
    console.log(
      `nats-server RSS, ids (dedupe):  ${mb(a.idle)} MiB idle → ${mb(a.rss)} MiB (${a.seconds.toFixed(1)} s)`,
    );
    console.log(
      `nats-server RSS, no ids:        ${mb(b.idle)} MiB idle → ${mb(b.rss)} MiB (${b.seconds.toFixed(1)} s)`,
    );
    console.log(`duplicate-window cost:          ${perTicket} bytes per ticket held in the window`);
    for (const perHour of [100, 1_000, 10_000]) {
      const held = perHour * (TICKETS_DUPLICATE_WINDOW_MS / 3600_000);
      console.log(`  at ${perHour} tickets/hour: ${held} ids held, ≈ ${mb(held * perTicket)} MiB`);
    }
    console.log(`result: bytes_per_ticket=${perTicket} tickets=${COUNT}`);
  } finally {
    await withIds.stop();
    await withoutIds.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

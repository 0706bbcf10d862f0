import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection, nanos } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { NatsAuthOptions } from "../core/nats-auth.ts";
import {
  REQUEST_ID_HEADER,
  TICKETS_DUPLICATE_WINDOW_MS,
  TICKETS_STREAM,
  TICKETS_SUBJECTS,
  ticketSubject,
} from "../core/streams.ts";
import type { Ticket } from "../core/ticket.ts";
import { Unavailable } from "./errors.ts";

export interface PublishAck {
  stream: string;
  seq: number;
  /** The broker already held a message with this id (inside its duplicate window). */
  duplicate: boolean;
}

/** Hands tickets to durable storage. `publish` resolves only once the ticket is stored. */
export interface TicketPublisher {
  /** Throws `Unavailable` when the ticket could not be stored (the caller answers 503). */
  publish(ticket: Ticket): Promise<PublishAck>;
  /** Connected, and the stream is known to exist. */
  ready(): boolean;
  close(): Promise<void>;
}

export interface NatsPublisherOptions {
  servers: string | string[];
  /** User, password, inbox prefix and TLS CA (core/nats-auth.ts `natsAuthOptions("gateway", env)`). */
  auth?: NatsAuthOptions;
  logger: Logger;
  /** Milliseconds to wait for the JetStream ack. */
  publishTimeoutMs?: number;
  /** Milliseconds between connection attempts while NATS is unreachable. */
  reconnectWaitMs?: number;
}

/**
 * Duplicate window of TICKETS: tickets repeated within it are dropped by the broker. 73 h, GitHub's
 * redelivery horizon plus slack, since ticket ids come from the signed event (`core/streams.ts`).
 */
export const DUPLICATE_WINDOW_MS = TICKETS_DUPLICATE_WINDOW_MS;

/**
 * Creates the TICKETS stream when it is missing: file storage, `tickets.>`, 73-hour duplicate window.
 * Idempotent, so every gateway replica may call it on each connect. A stream that exists with another
 * configuration is used as it is: the operator owns the streams' configuration and brings it in line
 * (the gateway's NATS user may create TICKETS but not change it).
 */
export async function ensureTicketsStream(jsm: JetStreamManager, logger?: Logger): Promise<void> {
  const config = {
    name: TICKETS_STREAM,
    subjects: TICKETS_SUBJECTS,
    storage: "file" as const,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
  };
  try {
    await jsm.streams.add(config);
  } catch (err) {
    // 10058: the stream exists with another configuration.
    if ((err as { code?: number }).code !== 10058) throw err;
    const { config: current } = await jsm.streams.info(TICKETS_STREAM);
    logger?.warn(
      { event: "nats_stream_config_differs", stream: TICKETS_STREAM, duplicate_window: current.duplicate_window },
      "TICKETS exists with another configuration; using it (the operator brings it in line)",
    );
  }
}

/**
 * A publisher that connects in the background and keeps reconnecting forever, so the HTTP server
 * can start (and answer 503 / not ready) before NATS is reachable. Publishing while disconnected
 * fails at once instead of queueing in the client: the sender keeps the delivery and retries.
 *
 * @example
 * const publisher = natsPublisher({ servers: "nats://127.0.0.1:4222", logger });
 * await publisher.publish(ticket); // { stream: "TICKETS", seq: 1, duplicate: false }
 */
export function natsPublisher({
  servers,
  auth = {},
  logger,
  publishTimeoutMs = 2_000,
  reconnectWaitMs = 500,
}: NatsPublisherOptions): TicketPublisher & { connected: Promise<void> } {
  let nc: NatsConnection | undefined;
  let js: JetStreamClient | undefined;
  let streamReady = false;
  let connected = false;
  let closing = false;

  const sleep = () => new Promise((r) => setTimeout(r, reconnectWaitMs));

  let preparing = false;
  /** Ensures the stream, retrying until it works, the connection drops or the publisher closes. */
  const prepare = async (conn: NatsConnection) => {
    if (preparing) return;
    preparing = true;
    try {
      while (!closing && connected && !streamReady) {
        try {
          await ensureTicketsStream(await jetstreamManager(conn, { timeout: publishTimeoutMs }), logger);
          streamReady = true;
          logger.info({ event: "nats_stream_ready", stream: TICKETS_STREAM }, "TICKETS stream ready");
        } catch (err) {
          logger.warn({ err, event: "nats_stream_not_ready" }, "TICKETS stream not ready yet");
          await sleep();
        }
      }
    } finally {
      preparing = false;
    }
  };

  const watch = async (conn: NatsConnection) => {
    for await (const status of conn.status()) {
      if (status.type === "disconnect") {
        connected = false;
        // Ready again only once JetStream answers after the reconnect.
        streamReady = false;
        logger.warn({ event: "nats_disconnected" }, "NATS connection lost");
      } else if (status.type === "reconnect") {
        connected = true;
        logger.info({ event: "nats_reconnected" }, "NATS connection restored");
        // The server may have come back with an empty store.
        void prepare(conn);
      }
    }
  };

  const start = async (): Promise<void> => {
    let conn: NatsConnection | undefined;
    for (let attempt = 1; !closing && !conn; attempt++) {
      try {
        conn = await connect({
          servers,
          ...auth,
          name: "agentfactory-gateway",
          maxReconnectAttempts: -1,
          reconnectTimeWait: reconnectWaitMs,
          timeout: 2_000,
          // Capturing a stack per request for async traces cost ~6% of the gateway's CPU.
          noAsyncTraces: true,
        });
      } catch (err) {
        // Attempts 1, 2, 4, 8, …: an outage is visible without a line every half second.
        if ((attempt & (attempt - 1)) === 0) {
          logger.warn({ err: (err as Error).message, attempt, event: "nats_connect_failed" }, "NATS not reachable yet");
        }
        await sleep();
      }
    }
    if (!conn) return;
    nc = conn;
    js = jetstream(conn, { timeout: publishTimeoutMs });
    connected = true;
    void watch(conn);
    logger.info({ event: "nats_connected", server: conn.getServer() }, "connected to NATS");
    await prepare(conn);
  };

  const connectedPromise = start();

  return {
    connected: connectedPromise,
    ready: () => connected && streamReady && !!nc && !nc.isClosed(),
    async publish(ticket) {
      const client = js;
      if (!client || !connected) throw new Unavailable("nats", "not connected");
      const hdrs = headers();
      hdrs.set(REQUEST_ID_HEADER, ticket.requestId);
      const subject = ticketSubject(ticket.source, ticket.kind);
      const data = JSON.stringify(ticket);
      try {
        // Wait for the check phase, so the publishes of all requests read in this event-loop turn
        // leave in one socket write (the client flushes once per burst of synchronous publishes).
        await new Promise<void>((resolve) => setImmediate(resolve));
        const ack = await client.publish(subject, data, { msgID: ticket.id, headers: hdrs, timeout: publishTimeoutMs });
        return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
      } catch (err) {
        // No stream answers on the subject (deleted, or a server with a fresh store): make it again.
        if ((err as Error).name === "JetStreamNotEnabled" && connected && nc) {
          streamReady = false;
          void prepare(nc);
        }
        throw new Unavailable("nats", (err as Error).message, { cause: err });
      }
    },
    async close() {
      closing = true;
      connected = false;
      // Drain flushes what is in flight and then closes; buffered publishes still get their acks.
      if (nc && !nc.isClosed()) await nc.drain().catch(() => nc?.close());
    },
  };
}

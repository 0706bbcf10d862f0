import { AckPolicy, type JetStreamClient, type JetStreamManager, type JsMsg, StorageType } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { type AgentRun, isTerminal } from "../core/agentrun.ts";
import { ANNOTATIONS, dnsSafe, FORGE_LABELS, LABELS, repoLabel, runName, shortenName } from "../core/names.ts";
import { type RunDefaults, runFromTicket } from "../core/run-from-ticket.ts";
import {
  OUTCOMES_STREAM,
  OUTCOMES_SUBJECTS,
  TICKETS_CONSUMER,
  TICKETS_DUPLICATE_WINDOW_MS,
  TICKETS_STREAM,
  TICKETS_SUBJECTS,
} from "../core/streams.ts";
import { Ticket, textDigest } from "../core/ticket.ts";
import type { IssueText } from "./forge.ts";
import { isAlreadyExists, isConflict, type KubeClient } from "./kube/client.ts";
import type { Metrics } from "./metrics.ts";
import { RECEIVED_AT_ANNOTATION } from "./reconciler.ts";
import { SenderGate } from "./senders.ts";

/**
 * Creates the streams and the durable consumer when they are missing (the gateway may start later),
 * and brings the streams' subjects and duplicate window in line when they differ (an older release's
 * 2-minute TICKETS window becomes the replay horizon's): the operator owns the streams' configuration
 * (the gateway's NATS user may only create TICKETS).
 */
export async function ensureStreams(jsm: JetStreamManager): Promise<void> {
  const want = [
    { name: TICKETS_STREAM, subjects: TICKETS_SUBJECTS, duplicate_window: nanos(TICKETS_DUPLICATE_WINDOW_MS) },
    { name: OUTCOMES_STREAM, subjects: OUTCOMES_SUBJECTS, duplicate_window: nanos(120_000) },
  ];
  for (const s of want) {
    let current: Awaited<ReturnType<JetStreamManager["streams"]["info"]>> | undefined;
    try {
      current = await jsm.streams.info(s.name);
    } catch {
      current = undefined;
    }
    if (current) {
      const { subjects = [], duplicate_window } = current.config;
      if (duplicate_window !== s.duplicate_window || subjects.join() !== s.subjects.join())
        await jsm.streams.update(s.name, { subjects: s.subjects, duplicate_window: s.duplicate_window });
    } else {
      try {
        await jsm.streams.add({ ...s, storage: StorageType.File });
      } catch (err) {
        if (!/already in use|exists/i.test((err as Error).message)) throw err;
      }
    }
  }
  try {
    await jsm.consumers.info(TICKETS_STREAM, TICKETS_CONSUMER);
  } catch {
    await jsm.consumers.add(TICKETS_STREAM, {
      durable_name: TICKETS_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(60_000),
      max_ack_pending: 1000,
    });
  }
}

export type TicketApi = Pick<KubeClient, "createRun" | "listRuns" | "patchRun">;

/** The labels that find the runs of one work item. */
export function workItemSelector(ticket: Pick<Ticket, "repo" | "source" | "workItem">): string {
  return [
    `${LABELS.repo}=${repoLabel(ticket.repo)}`,
    `${LABELS.workItem}=${shortenName(dnsSafe(`${ticket.source}-${ticket.workItem}`))}`,
  ].join(",");
}

/** Runs as the informer cache holds them: enough for the one-run-per-work-item check of new tickets. */
export type RunLookup = () => readonly AgentRun[];

/** The newest non-terminal run of a work item, from the API (or from `cache` when given). */
export async function activeRun(
  api: TicketApi,
  namespace: string,
  ticket: Ticket,
  cache?: RunLookup,
): Promise<AgentRun | undefined> {
  const labels = Object.fromEntries(
    workItemSelector(ticket)
      .split(",")
      .map((kv) => kv.split("=") as [string, string]),
  );
  const items = cache
    ? cache().filter((r) => Object.entries(labels).every(([k, v]) => r.metadata.labels?.[k] === v))
    : (await api.listRuns(namespace, workItemSelector(ticket))).items;
  return items
    .filter((r) => !isTerminal(r.status?.phase) && r.spec.ticket.repo === ticket.repo)
    .sort((a, b) =>
      String(b.metadata.creationTimestamp ?? "").localeCompare(String(a.metadata.creationTimestamp ?? "")),
    )[0];
}

export type HandleResult = "created" | "exists" | "replied" | "cancelled" | "ignored" | "changed";

/** What a retry asks the forge: the issue as it is now, and a comment when it changed since labeling. */
export interface RetryForge {
  issue(repo: string, number: number, installationId?: number): Promise<IssueText | undefined>;
  commentOnce(repo: string, number: number, marker: string, body: string, installationId?: number): Promise<void>;
}

/** Marker of the comment a refused retry posts (one per retry ticket). */
export const retryChangedMarker = (ticketId: string) => `<!-- agentfactory:retry-refused ticket=${ticketId} -->`;

export function retryChangedComment(issue: number): string {
  return [
    `⚠️ **AgentFactory** did not retry: issue #${issue} was edited after it was labeled \`${FORGE_LABELS.trigger}\`.`,
    "",
    "A retry runs the text a maintainer approved by labeling, never later edits. Review the issue as it is now;",
    `to run it, remove the \`${FORGE_LABELS.trigger}\` label and add it again (a new run with the current text).`,
  ].join("\n");
}

/**
 * Applies one ticket to the cluster. Idempotent, so a redelivered ticket changes nothing:
 * `new` creates the run under its deterministic name (409 = already done); `reply` appends the
 * comment to the active run's clarifications once; `cancel` sets `spec.suspend`.
 */
export async function handleTicket(
  api: TicketApi,
  defaults: RunDefaults,
  ticket: Ticket,
  cache?: RunLookup,
  forge?: RetryForge,
): Promise<HandleResult> {
  const ns = defaults.namespace;
  switch (ticket.kind) {
    case "retry":
      return retry(api, defaults, ticket, forge);
    case "new": {
      const run = runFromTicket(ticket, defaults);
      run.metadata.annotations = { ...run.metadata.annotations, [RECEIVED_AT_ANNOTATION]: ticket.receivedAt };
      const active = await activeRun(api, ns, ticket, cache);
      if (active && active.metadata.name !== run.metadata.name) return "ignored"; // one run per work item at a time
      try {
        await api.createRun(run);
        return "created";
      } catch (err) {
        if (isAlreadyExists(err)) return "exists";
        throw err;
      }
    }
    case "reply":
    case "feedback": {
      const run = await activeRun(api, ns, ticket);
      if (!run) return "ignored";
      const entry = { author: ticket.author, body: ticket.comment ?? ticket.body, at: ticket.receivedAt };
      const existing = run.spec.clarifications ?? [];
      if (existing.some((c) => c.at === entry.at && c.author === entry.author && c.body === entry.body))
        return "exists";
      // resourceVersion makes the merge-patch conditional: a concurrent change fails with 409 and is retried.
      await api.patchRun(ns, run.metadata.name, {
        metadata: { resourceVersion: run.metadata.resourceVersion },
        spec: { clarifications: [...existing, entry] },
      });
      return "replied";
    }
    case "cancel": {
      const run = await activeRun(api, ns, ticket);
      if (!run) return "ignored";
      if (run.spec.suspend) return "exists";
      await api.patchRun(ns, run.metadata.name, { spec: { suspend: true } });
      return "cancelled";
    }
  }
}

/**
 * `/agentfactory retry`: a new run of the work item's last run, from the ticket text stored on that
 * run (what a maintainer approved by labeling), never from the issue as it is now. If the issue was
 * edited since (its title and body no longer match the run's `textDigest`), nothing starts: a comment
 * says so where the retry was asked for, and a new label is needed. Without a previous run, or while
 * one is active, there is nothing to retry.
 */
async function retry(
  api: TicketApi,
  defaults: RunDefaults,
  ticket: Ticket,
  forge: RetryForge | undefined,
): Promise<HandleResult> {
  const ns = defaults.namespace;
  const runs = (await api.listRuns(ns, workItemSelector(ticket))).items.filter(
    (r) => r.spec.ticket.repo === ticket.repo,
  );
  const name = runName(ticket);
  if (runs.some((r) => r.metadata.name === name)) return "exists"; // a redelivered retry
  const last = runs.sort((a, b) =>
    String(b.metadata.creationTimestamp ?? "").localeCompare(String(a.metadata.creationTimestamp ?? "")),
  )[0];
  if (!last || !isTerminal(last.status?.phase)) return "ignored";
  const stored = last.spec.ticket;
  const digest = last.metadata.annotations?.[ANNOTATIONS.textDigest];
  if (stored.source === "github" && stored.number > 0) {
    // Without the forge the issue cannot be compared: a GitHub retry never starts unchecked.
    if (!forge) return "changed";
    const now = await forge.issue(stored.repo, stored.number, stored.installationId);
    if (!now) return "ignored";
    if (!digest || textDigest(now.title, now.body) !== digest) {
      const where = ticket.pullRequest?.number ?? stored.number;
      await forge.commentOnce(
        stored.repo,
        where,
        retryChangedMarker(ticket.id),
        retryChangedComment(stored.number),
        stored.installationId,
      );
      return "changed";
    }
  }
  const { original: _received, ...asked } = ticket;
  const run = runFromTicket(
    {
      ...asked,
      workItem: stored.workItem,
      number: stored.number,
      url: stored.url,
      title: stored.title,
      body: stored.body,
      author: stored.author,
      labels: stored.labels,
      ...(stored.installationId ? { installationId: stored.installationId } : {}),
    },
    defaults,
  );
  run.metadata.annotations = {
    ...run.metadata.annotations,
    [RECEIVED_AT_ANNOTATION]: ticket.receivedAt,
    ...(digest ? { [ANNOTATIONS.textDigest]: digest } : {}),
  };
  try {
    await api.createRun(run);
    return "created";
  } catch (err) {
    if (isAlreadyExists(err)) return "exists";
    throw err;
  }
}

export interface ConsumerOptions {
  js: JetStreamClient;
  api: TicketApi;
  defaults: RunDefaults;
  log: Logger;
  metrics?: Metrics;
  /** Tickets handled at once. */
  concurrency?: number;
  /** The informer's runs, to check new tickets against without an API call. */
  cache?: RunLookup;
  /** The issue as it is now, for `/agentfactory retry` (with the App's credentials). */
  forge?: RetryForge;
  /**
   * Admits tickets before they are applied (GitHub senders need write permission, asked of the forge).
   * Absent: a gate without a forge, which refuses every GitHub ticket.
   */
  senders?: SenderGate;
}

/**
 * The durable pull consumer on TICKETS: acks a ticket only after it was applied, naks it with a
 * growing delay when that failed, and terminates tickets that can never parse.
 */
export class TicketConsumer {
  private stopped = false;
  private messages?: { stop(): void };
  private loop?: Promise<void>;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly senders: SenderGate;

  constructor(private readonly o: ConsumerOptions) {
    this.senders = o.senders ?? new SenderGate({});
  }

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        const consumer = await this.o.js.consumers.get(TICKETS_STREAM, TICKETS_CONSUMER);
        const messages = await consumer.consume({ max_messages: this.o.concurrency ?? 16 });
        this.messages = messages;
        failures = 0;
        for await (const m of messages) {
          const p = this.handle(m).finally(() => this.inFlight.delete(p));
          this.inFlight.add(p);
          if (this.inFlight.size >= (this.o.concurrency ?? 16)) await Promise.race(this.inFlight);
          if (this.stopped) break;
        }
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, "ticket consumer error; restarting");
      }
      if (this.stopped) break;
      failures += 1;
      await sleep(Math.min(500 * 2 ** failures, 15_000));
    }
  }

  private async handle(m: JsMsg): Promise<void> {
    let ticket: Ticket;
    try {
      ticket = Ticket.parse(m.json());
    } catch (err) {
      this.o.log.error({ seq: m.seq, err: (err as Error).message }, "invalid ticket; terminating it");
      this.o.metrics?.ticketsTotal.inc({ source: "unknown", kind: "invalid", result: "terminated" });
      m.term("invalid ticket");
      return;
    }
    const log = this.o.log.child({ ticket: ticket.id, requestId: ticket.requestId, kind: ticket.kind });
    try {
      const admission = await this.senders.admit(ticket);
      if (admission.action !== "admit") {
        // Acked: a refused or irrelevant ticket never becomes valid by being delivered again.
        m.ack();
        const result = admission.action === "refuse" ? "refused" : "ignored";
        if (result === "refused") log.warn({ sender: ticket.sender, reason: admission.reason }, "ticket refused");
        else log.info({ reason: admission.reason }, "ticket ignored");
        this.o.metrics?.ticketsTotal.inc({ source: ticket.source, kind: ticket.kind, result });
        return;
      }
      ticket = admission.ticket;
      const result = await handleTicket(this.o.api, this.o.defaults, ticket, this.o.cache, this.o.forge);
      m.ack();
      log.info({ result }, "ticket applied");
      this.o.metrics?.ticketsTotal.inc({ source: ticket.source, kind: ticket.kind, result });
    } catch (err) {
      const delay = isConflict(err) ? 100 : Math.min(1000 * 2 ** Math.min(m.info.deliveryCount - 1, 6), 60_000);
      log.warn({ err: (err as Error).message, delayMs: delay }, "ticket failed; will be redelivered");
      this.o.metrics?.ticketsTotal.inc({ source: ticket.source, kind: ticket.kind, result: "error" });
      m.nak(delay);
    }
  }

  /** Stops pulling, waits for the tickets in hand. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.messages?.stop();
    await Promise.allSettled([...this.inFlight]);
    await this.loop?.catch(() => {});
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

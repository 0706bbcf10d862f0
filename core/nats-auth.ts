/**
 * Who may do what on NATS: one user per client, each allowed only the subjects it needs. The chart's
 * NATS config embeds `natsAuthorizationConf()` (as charts/agentfactory/files/nats/authorization.conf,
 * kept equal by test/chart) and the test world starts nats-server with the same text, so tests run
 * against the production permissions.
 *
 * Every client also gets its own inbox prefix (`_INBOX_<client>`): replies (JetStream acks, pulled
 * messages) go to the requester's inbox, and a shared `_INBOX.>` grant would let the gateway read the
 * tickets delivered to the operator.
 */
import {
  EGRESS_LEDGER_BUCKET,
  OUTCOMES_STREAM,
  OUTCOMES_SUBJECTS,
  TICKETS_CONSUMER,
  TICKETS_STREAM,
  TICKETS_SUBJECTS,
} from "./streams.ts";

/** The NATS clients, named after the process (the patterns CronJob and the outcomes CLI share `patterns`). */
export const NATS_CLIENTS = ["gateway", "operator", "patterns", "egress"] as const;
export type NatsClient = (typeof NATS_CLIENTS)[number];

/** JetStream's API prefix in the default domain. */
export const JS_API = "$JS.API";
const api = (call: string) => `${JS_API}.${call}`;

export interface NatsPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
}

/** The user a client connects as. */
export const natsUser = (client: NatsClient): string => client;
/** The client's private reply prefix (replaces `_INBOX`). */
export const natsInboxPrefix = (client: NatsClient): string => `_INBOX_${client}`;
/** The key of the client's password in the NATS credentials Secret. */
export const natsPasswordKey = (client: NatsClient): string => `${client}-password`;
/** The environment variable nats-server reads the client's password from. */
export const natsPasswordEnv = (client: NatsClient): string => `NATS_${client.toUpperCase()}_PASSWORD`;

const inbox = (client: NatsClient) => ({ allow: [`${natsInboxPrefix(client)}.>`] });

/**
 * The permission table. Anything not allowed is denied (publishing a denied subject is dropped with a
 * permissions violation; subscribing to one fails).
 *
 * - gateway: publishes tickets (JetStream dedupes on `Nats-Msg-Id`, which needs nothing more than the
 *   publish and its ack in the inbox); may look up and create TICKETS, so it can start before the
 *   operator; cannot change or delete it, read it, or publish anything else.
 * - operator: owns the streams' configuration (create, update, info of TICKETS and OUTCOMES) and its
 *   durable consumer; pulls and acks tickets on that consumer only; publishes outcome records.
 * - patterns (CronJob, outcomes CLI): reads OUTCOMES through ephemeral ordered consumers; publishes
 *   nothing.
 * - egress (the egress gateway): its budget ledger only, a KV bucket: create and look up the bucket's
 *   stream, read entries (direct get, or message get on servers without direct access), write them
 *   (puts, compare-and-swap updates, deletes and purges are all publishes to `$KV.<bucket>.<key>`).
 *   Nothing of TICKETS or OUTCOMES, no consumers.
 */
export const NATS_PERMISSIONS: Readonly<Record<NatsClient, NatsPermissions>> = {
  gateway: {
    publish: {
      allow: [
        ...TICKETS_SUBJECTS,
        api("INFO"),
        api(`STREAM.INFO.${TICKETS_STREAM}`),
        api(`STREAM.CREATE.${TICKETS_STREAM}`),
      ],
    },
    subscribe: inbox("gateway"),
  },
  operator: {
    publish: {
      allow: [
        ...OUTCOMES_SUBJECTS,
        api("INFO"),
        ...[TICKETS_STREAM, OUTCOMES_STREAM].flatMap((s) => [
          api(`STREAM.INFO.${s}`),
          api(`STREAM.CREATE.${s}`),
          api(`STREAM.UPDATE.${s}`),
        ]),
        api(`CONSUMER.INFO.${TICKETS_STREAM}.${TICKETS_CONSUMER}`),
        api(`CONSUMER.CREATE.${TICKETS_STREAM}.${TICKETS_CONSUMER}`),
        // Servers before 2.9 only know the older durable-create subject.
        api(`CONSUMER.DURABLE.CREATE.${TICKETS_STREAM}.${TICKETS_CONSUMER}`),
        api(`CONSUMER.MSG.NEXT.${TICKETS_STREAM}.${TICKETS_CONSUMER}`),
        // Ack, nak, term and in-progress go to the delivered message's reply subject.
        `$JS.ACK.${TICKETS_STREAM}.${TICKETS_CONSUMER}.>`,
      ],
    },
    subscribe: inbox("operator"),
  },
  patterns: {
    publish: {
      allow: [
        api("INFO"),
        api(`STREAM.INFO.${OUTCOMES_STREAM}`),
        // Ordered consumers are ephemeral, named by the client, and recreated on a gap.
        api(`CONSUMER.CREATE.${OUTCOMES_STREAM}`),
        api(`CONSUMER.CREATE.${OUTCOMES_STREAM}.>`),
        api(`CONSUMER.INFO.${OUTCOMES_STREAM}.*`),
        api(`CONSUMER.MSG.NEXT.${OUTCOMES_STREAM}.*`),
        api(`CONSUMER.DELETE.${OUTCOMES_STREAM}.*`),
      ],
    },
    subscribe: inbox("patterns"),
  },
  egress: {
    publish: {
      allow: [
        `$KV.${EGRESS_LEDGER_BUCKET}.>`,
        api("INFO"),
        api(`STREAM.INFO.KV_${EGRESS_LEDGER_BUCKET}`),
        api(`STREAM.CREATE.KV_${EGRESS_LEDGER_BUCKET}`),
        api(`DIRECT.GET.KV_${EGRESS_LEDGER_BUCKET}`),
        api(`DIRECT.GET.KV_${EGRESS_LEDGER_BUCKET}.>`),
        api(`STREAM.MSG.GET.KV_${EGRESS_LEDGER_BUCKET}`),
      ],
    },
    subscribe: inbox("egress"),
  },
};

/** True when a NATS subject pattern (`*` one token, `>` one or more trailing tokens) matches a subject. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Whether the table lets `client` publish to / subscribe to `subject`. */
export function natsAllows(client: NatsClient, op: "publish" | "subscribe", subject: string): boolean {
  return NATS_PERMISSIONS[client][op].allow.some((pattern) => subjectMatches(pattern, subject));
}

/** One entry of the `users` list; the password is read from the environment variable `passwordEnv`. */
export function natsUserConf(user: string, passwordEnv: string, permissions?: NatsPermissions): string {
  return [
    "    {",
    `      user: ${JSON.stringify(user)}`,
    `      password: $${passwordEnv}`,
    ...(permissions ? [`      permissions: ${JSON.stringify(permissions)}`] : []),
    "    }",
  ].join("\n");
}

/**
 * The `authorization` block of nats-server's config: one user per client, the password read from
 * `natsPasswordEnv(client)` when the server starts (nats-server parses the value as one config token:
 * letters and digits, starting with a letter), the permissions as JSON (which the config format
 * accepts). `extraUsers` (entries from `natsUserConf`) is for the test world's inspection user only.
 */
export function natsAuthorizationConf(extraUsers: readonly string[] = []): string {
  return [
    "# Generated from core/nats-auth.ts (make chart-files): one user per client, allowed only the subjects it needs.",
    "authorization {",
    "  users = [",
    ...NATS_CLIENTS.map((client) => natsUserConf(natsUser(client), natsPasswordEnv(client), NATS_PERMISSIONS[client])),
    ...extraUsers,
    "  ]",
    "}",
    "",
  ].join("\n");
}

/** A client's NATS settings, as the chart sets them in the environment. */
export interface NatsClientSettings {
  NATS_USER?: string | undefined;
  NATS_PASSWORD?: string | undefined;
  /** PEM file of the CA that signed the server's certificate; set, the client accepts only TLS. */
  NATS_TLS_CA_FILE?: string | undefined;
}

/** What these settings add to the client's connect options (a subset of nats.js ConnectionOptions). */
export interface NatsAuthOptions {
  user?: string;
  pass?: string;
  inboxPrefix?: string;
  tls?: { caFile: string };
}

/**
 * Connect options for `client`: user and password when a password is set (the user defaults to the
 * client's name), its private inbox prefix with them, and TLS verified against the CA file.
 *
 * @example
 * connect({ servers, ...natsAuthOptions("gateway", { NATS_PASSWORD: "p…" }) })
 */
export function natsAuthOptions(client: NatsClient, settings: NatsClientSettings): NatsAuthOptions {
  const password = settings.NATS_PASSWORD?.trim();
  const caFile = settings.NATS_TLS_CA_FILE?.trim();
  return {
    ...(password
      ? { user: settings.NATS_USER?.trim() || natsUser(client), pass: password, inboxPrefix: natsInboxPrefix(client) }
      : {}),
    ...(caFile ? { tls: { caFile } } : {}),
  };
}

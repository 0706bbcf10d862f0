import { describe, expect, it } from "vitest";
import {
  NATS_CLIENTS,
  NATS_PERMISSIONS,
  natsAllows,
  natsAuthOptions,
  natsAuthorizationConf,
  natsInboxPrefix,
  natsPasswordEnv,
  natsUserConf,
  subjectMatches,
} from "./nats-auth.ts";
import {
  EGRESS_LEDGER_BUCKET,
  OUTCOMES_STREAM,
  outcomeSubject,
  TICKETS_CONSUMER,
  TICKETS_STREAM,
  ticketSubject,
} from "./streams.ts";

const ACK = `$JS.ACK.${TICKETS_STREAM}.${TICKETS_CONSUMER}.1.5.5.1700000000000000000.0`;
const NEXT = `$JS.API.CONSUMER.MSG.NEXT.${TICKETS_STREAM}.${TICKETS_CONSUMER}`;

describe("subjectMatches", () => {
  it.each([
    ["tickets.>", "tickets.github.new", true],
    ["tickets.>", "tickets", false],
    ["tickets.*", "tickets.github", true],
    ["tickets.*", "tickets.github.new", false],
    ["$JS.API.CONSUMER.INFO.OUTCOMES.*", "$JS.API.CONSUMER.INFO.OUTCOMES.oc_1", true],
    ["$JS.API.CONSUMER.INFO.OUTCOMES.*", "$JS.API.CONSUMER.INFO.TICKETS.oc_1", false],
    ["a.b", "a.b", true],
    ["a.b", "a.b.c", false],
    ["a.b.c", "a.b", false],
  ])("%s ~ %s = %s", (pattern, subject, want) => {
    expect(subjectMatches(pattern, subject)).toBe(want);
  });
});

describe("NATS_PERMISSIONS", () => {
  it("lets the gateway publish tickets and create (not change, read or delete) TICKETS", () => {
    expect(natsAllows("gateway", "publish", ticketSubject("github", "new"))).toBe(true);
    expect(natsAllows("gateway", "publish", ticketSubject("clickup", "reply"))).toBe(true);
    expect(natsAllows("gateway", "publish", `$JS.API.STREAM.CREATE.${TICKETS_STREAM}`)).toBe(true);
    for (const denied of [
      outcomeSubject("clean"),
      `$JS.API.STREAM.UPDATE.${TICKETS_STREAM}`,
      `$JS.API.STREAM.DELETE.${TICKETS_STREAM}`,
      `$JS.API.STREAM.PURGE.${TICKETS_STREAM}`,
      `$JS.API.STREAM.MSG.GET.${TICKETS_STREAM}`,
      `$JS.API.STREAM.CREATE.${OUTCOMES_STREAM}`,
      `$JS.API.CONSUMER.CREATE.${TICKETS_STREAM}`,
      NEXT,
      ACK,
      "anything.else",
    ])
      expect(natsAllows("gateway", "publish", denied), denied).toBe(false);
    expect(natsAllows("gateway", "subscribe", ticketSubject("github", "new"))).toBe(false);
    expect(natsAllows("gateway", "subscribe", "tickets.>")).toBe(false);
  });

  it("lets the operator pull and ack only on its durable consumer, and publish outcomes but no ticket", () => {
    expect(natsAllows("operator", "publish", NEXT)).toBe(true);
    expect(natsAllows("operator", "publish", ACK)).toBe(true);
    expect(natsAllows("operator", "publish", outcomeSubject("escalated"))).toBe(true);
    expect(natsAllows("operator", "publish", `$JS.API.CONSUMER.CREATE.${TICKETS_STREAM}.${TICKETS_CONSUMER}`)).toBe(
      true,
    );
    for (const denied of [
      ticketSubject("github", "new"),
      `$JS.API.CONSUMER.MSG.NEXT.${TICKETS_STREAM}.other`,
      `$JS.ACK.${TICKETS_STREAM}.other.1.1.1.1.0`,
      `$JS.API.CONSUMER.CREATE.${TICKETS_STREAM}.other`,
      `$JS.API.CONSUMER.DELETE.${TICKETS_STREAM}.${TICKETS_CONSUMER}`,
      `$JS.API.STREAM.DELETE.${TICKETS_STREAM}`,
      `$JS.API.STREAM.PURGE.${OUTCOMES_STREAM}`,
    ])
      expect(natsAllows("operator", "publish", denied), denied).toBe(false);
  });

  it("lets the patterns user read OUTCOMES through its own consumers and publish nothing else", () => {
    expect(natsAllows("patterns", "publish", `$JS.API.CONSUMER.CREATE.${OUTCOMES_STREAM}.oc_1`)).toBe(true);
    expect(natsAllows("patterns", "publish", `$JS.API.CONSUMER.MSG.NEXT.${OUTCOMES_STREAM}.oc_1`)).toBe(true);
    for (const denied of [
      outcomeSubject("clean"),
      ticketSubject("dispatch", "new"),
      `$JS.API.CONSUMER.CREATE.${TICKETS_STREAM}.oc_1`,
      `$JS.API.CONSUMER.MSG.NEXT.${TICKETS_STREAM}.${TICKETS_CONSUMER}`,
      `$JS.API.STREAM.DELETE.${OUTCOMES_STREAM}`,
      `$JS.API.STREAM.PURGE.${OUTCOMES_STREAM}`,
    ])
      expect(natsAllows("patterns", "publish", denied), denied).toBe(false);
  });

  it("lets the egress gateway read and write its ledger bucket only", () => {
    const bucket = EGRESS_LEDGER_BUCKET;
    for (const allowed of [
      `$KV.${bucket}.run.agents.calc-1`,
      `$JS.API.STREAM.INFO.KV_${bucket}`,
      `$JS.API.STREAM.CREATE.KV_${bucket}`,
      `$JS.API.DIRECT.GET.KV_${bucket}.$KV.${bucket}.run.agents.calc-1`,
    ])
      expect(natsAllows("egress", "publish", allowed), allowed).toBe(true);
    for (const denied of [
      ticketSubject("github", "new"),
      outcomeSubject("clean"),
      "$KV.other-bucket.key",
      `$JS.API.STREAM.DELETE.KV_${bucket}`,
      `$JS.API.STREAM.UPDATE.KV_${bucket}`,
      `$JS.API.STREAM.PURGE.KV_${bucket}`,
      `$JS.API.CONSUMER.CREATE.KV_${bucket}`,
      `$JS.API.DIRECT.GET.${TICKETS_STREAM}`,
      `$JS.API.CONSUMER.MSG.NEXT.${TICKETS_STREAM}.${TICKETS_CONSUMER}`,
    ])
      expect(natsAllows("egress", "publish", denied), denied).toBe(false);
    expect(natsAllows("egress", "subscribe", `$KV.${bucket}.>`)).toBe(false);
  });

  it("gives each client only its own inbox, so no client reads another's replies", () => {
    for (const client of NATS_CLIENTS) {
      expect(NATS_PERMISSIONS[client].subscribe.allow).toEqual([`${natsInboxPrefix(client)}.>`]);
      for (const other of NATS_CLIENTS.filter((c) => c !== client))
        expect(natsAllows(client, "subscribe", `${natsInboxPrefix(other)}.abc.1`), `${client} → ${other}`).toBe(false);
      expect(natsAllows(client, "subscribe", "_INBOX.abc")).toBe(false);
    }
  });

  it("grants no wildcard over the whole JetStream API or all subjects", () => {
    for (const client of NATS_CLIENTS)
      for (const pattern of [...NATS_PERMISSIONS[client].publish.allow, ...NATS_PERMISSIONS[client].subscribe.allow])
        expect([">", "$JS.>", "$JS.API.>", "$JS.API.STREAM.>", "$JS.API.CONSUMER.>", "_INBOX.>"]).not.toContain(
          pattern,
        );
  });
});

describe("natsAuthorizationConf", () => {
  it("lists one user per client with its password from the environment and its permissions as JSON", () => {
    const conf = natsAuthorizationConf();
    for (const client of NATS_CLIENTS) {
      expect(conf).toContain(`user: "${client}"`);
      expect(conf).toContain(`password: $${natsPasswordEnv(client)}\n`);
      expect(conf).toContain(`permissions: ${JSON.stringify(NATS_PERMISSIONS[client])}\n`);
    }
    expect(conf.match(/user: /g)).toHaveLength(NATS_CLIENTS.length);
    expect(natsAuthorizationConf([natsUserConf("admin", "ADMIN_PW")])).toContain(
      'user: "admin"\n      password: $ADMIN_PW\n',
    );
  });
});

describe("natsAuthOptions", () => {
  it("adds user, password and the private inbox only with a password, and TLS with a CA file", () => {
    expect(natsAuthOptions("gateway", {})).toEqual({});
    expect(natsAuthOptions("gateway", { NATS_USER: "gw", NATS_PASSWORD: "" })).toEqual({});
    expect(natsAuthOptions("gateway", { NATS_PASSWORD: "pw" })).toEqual({
      user: "gateway",
      pass: "pw",
      inboxPrefix: "_INBOX_gateway",
    });
    expect(natsAuthOptions("patterns", { NATS_USER: "p2", NATS_PASSWORD: "pw", NATS_TLS_CA_FILE: "/ca.crt" })).toEqual({
      user: "p2",
      pass: "pw",
      inboxPrefix: "_INBOX_patterns",
      tls: { caFile: "/ca.crt" },
    });
  });
});

/**
 * NATS authentication and permissions (issue 14 item 10), played against the real nats-server twice:
 * with the test world's config (core/nats-auth.ts) and with the nats.conf and generated Secret the
 * chart renders (helm template), adapted only in port, store and monitor settings. Each attack is
 * preceded by a positive control showing the same client can do its own job.
 *
 * Attacks: anonymous clients (a runner pod holds no NATS credential), wrong or borrowed passwords,
 * the gateway reading tickets or another client's inbox, publishing outcomes, purging or deleting
 * TICKETS or pulling from the operator's consumer; the operator publishing tickets or making its own
 * consumer; the pattern job writing anything. TLS as the chart renders it: only clients that verify
 * the server's certificate against the CA get in, and a client with a CA refuses a plaintext server.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  NATS_CLIENTS,
  type NatsClient,
  natsAuthorizationConf,
  natsPasswordEnv,
  natsPasswordKey,
} from "../../core/nats-auth.ts";
import {
  OUTCOMES_STREAM,
  outcomeSubject,
  TICKETS_CONSUMER,
  TICKETS_STREAM,
  ticketSubject,
} from "../../core/streams.ts";
import { loadConfig } from "../../operator/config.ts";
import { ensureStreams } from "../../operator/consumer.ts";
import { buildJob } from "../../operator/job.ts";
import { jobSettings } from "../../operator/main.ts";
import { exportOutcomes } from "../../operator/outcomes-cli.ts";
import { readOutcomes } from "../../operator/patterns-job.ts";
import { agentRun } from "../../operator/testing.ts";
import { find, type K8sObject, render } from "../chart/helm.ts";
import { type NatsServer, startNats } from "../world/nats.ts";

const run = promisify(execFile);
const PERMISSION = /Permissions Violation/;

/** The chart's nats.conf with what only makes sense in the pod taken out (port, monitor, pid, store). */
function forLoopback(conf: string): string {
  return conf
    .split("\n")
    .filter((line) => !/^\s*(port|http_port|pid_file|store_dir):/.test(line))
    .join("\n");
}

/** Decoded passwords of the chart's generated NATS Secret, by client. */
function chartPasswords(objects: K8sObject[]): Record<NatsClient, string> {
  const data = find(objects, "Secret", "-nats-auth").data as Record<string, string>;
  return Object.fromEntries(
    NATS_CLIENTS.map((c) => [c, Buffer.from(data[natsPasswordKey(c)] ?? "", "base64").toString()]),
  ) as Record<NatsClient, string>;
}

/** Starts nats-server with the config and Secret `helm template` renders for the default values. */
async function startChartNats(): Promise<NatsServer> {
  const objects = await render({ values: ["charts/agentfactory/ci/default-values.yaml"] });
  const passwords = chartPasswords(objects);
  const text = forLoopback(find(objects, "ConfigMap", "-nats").data["nats.conf"]);
  expect(text).toContain(natsAuthorizationConf().trimEnd());
  return startNats({
    config: {
      text,
      env: { POD_NAME: "nats-0", ...Object.fromEntries(NATS_CLIENTS.map((c) => [natsPasswordEnv(c), passwords[c]])) },
      passwords,
    },
  });
}

/** Message count of a stream, as the operator (which may read stream info) sees it. */
async function messages(nats: NatsServer, stream: string): Promise<number> {
  const nc = await connect(nats.options("operator"));
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
  } finally {
    await nc.close();
  }
}

/** Resolves to the error a subscription ends with (a denied subscribe ends it with a violation). */
async function subscriptionError(nc: NatsConnection, subject: string): Promise<unknown> {
  const sub = nc.subscribe(subject);
  const ended = (async () => {
    try {
      for await (const _ of sub) return new Error(`received a message on ${subject}`);
      return new Error(`subscription to ${subject} closed without an error`);
    } catch (err) {
      return err;
    }
  })();
  await nc.flush();
  return ended;
}

const ticketBody = (id: string) => JSON.stringify({ id, kind: "new" });

describe.each([
  ["the test world's config (core/nats-auth.ts)", () => startNats()],
  ["the chart's rendered nats.conf and generated Secret", startChartNats],
])("NATS as %s", (_name, start) => {
  let nats: NatsServer;
  const open: NatsConnection[] = [];
  const as = async (client: NatsClient) => {
    const nc = await connect({ ...nats.options(client), reconnect: false });
    open.push(nc);
    return nc;
  };

  beforeAll(async () => {
    nats = await start();
    // The operator makes the streams and its durable consumer, as it does at start.
    const operator = await as("operator");
    await ensureStreams(await jetstreamManager(operator));
  });
  afterAll(async () => {
    for (const nc of open) await nc.close().catch(() => {});
    await nats?.stop();
  });

  it("refuses anonymous clients (what a runner pod could try), wrong and borrowed passwords", async () => {
    // Positive control: the same server takes each client with its own credentials.
    for (const client of NATS_CLIENTS) expect((await as(client)).info?.auth_required, client).toBe(true);
    await expect(connect({ servers: nats.url, reconnect: false })).rejects.toMatchObject({
      name: "AuthorizationError",
    });
    await expect(
      connect({ servers: nats.url, user: "gateway", pass: "pwrong0000000000", reconnect: false }),
    ).rejects.toMatchObject({ name: "AuthorizationError" });
    // A client that learned another's password still cannot use it under its own name.
    await expect(
      connect({ servers: nats.url, user: "gateway", pass: nats.password("operator"), reconnect: false }),
    ).rejects.toMatchObject({ name: "AuthorizationError" });
  });

  it("lets the gateway publish tickets with dedupe, and nothing else", async () => {
    const gateway = await as("gateway");
    const js = jetstream(gateway);
    // Positive control: publish, redeliver, JetStream dedupes on the message id.
    const first = await js.publish(ticketSubject("github", "new"), ticketBody("github:sec-1"), {
      msgID: "github:sec-1",
    });
    const again = await js.publish(ticketSubject("github", "new"), ticketBody("github:sec-1"), {
      msgID: "github:sec-1",
    });
    expect([first.duplicate, again.duplicate, again.seq]).toEqual([false, true, first.seq]);
    const stored = await messages(nats, TICKETS_STREAM);

    // Read tickets, or the operator's replies (where pulled tickets arrive).
    expect(await subscriptionError(gateway, "tickets.>")).toMatchObject({ message: expect.stringMatching(PERMISSION) });
    expect(await subscriptionError(gateway, "_INBOX_operator.>")).toMatchObject({
      message: expect.stringMatching(PERMISSION),
    });
    expect(await subscriptionError(gateway, ">")).toMatchObject({ message: expect.stringMatching(PERMISSION) });
    // Forge an outcome record.
    await expect(js.publish(outcomeSubject("clean"), "{}", { timeout: 1_000 })).rejects.toThrow(PERMISSION);
    expect(await messages(nats, OUTCOMES_STREAM)).toBe(0);
    // Pull from the operator's durable consumer.
    await expect(js.consumers.get(TICKETS_STREAM, TICKETS_CONSUMER)).rejects.toThrow(PERMISSION);
    // Destroy or rewrite the ticket queue.
    const jsm = await jetstreamManager(gateway);
    await expect(jsm.streams.purge(TICKETS_STREAM)).rejects.toThrow(PERMISSION);
    await expect(jsm.streams.delete(TICKETS_STREAM)).rejects.toThrow(PERMISSION);
    await expect(jsm.streams.update(TICKETS_STREAM, { max_msgs: 1 })).rejects.toThrow(PERMISSION);
    await expect(jsm.streams.getMessage(TICKETS_STREAM, { seq: first.seq })).rejects.toThrow(PERMISSION);
    expect(await messages(nats, TICKETS_STREAM)).toBe(stored);
  });

  it("lets the operator pull and ack on its durable and record outcomes, but not publish tickets", async () => {
    const operator = await as("operator");
    const js = jetstream(operator);
    // Positive control: the ticket the gateway stored arrives on the durable consumer and is acked.
    const consumer = await js.consumers.get(TICKETS_STREAM, TICKETS_CONSUMER);
    const batch = await consumer.fetch({ max_messages: 1, expires: 2_000 });
    const got: string[] = [];
    for await (const m of batch) {
      got.push(m.subject);
      expect(await m.ackAck()).toBe(true);
    }
    expect(got).toEqual([ticketSubject("github", "new")]);
    expect((await consumer.info()).num_ack_pending).toBe(0);
    await js.publish(outcomeSubject("clean"), JSON.stringify({ outcome: "clean" }), { msgID: "run-1:Ready" });
    expect(await messages(nats, OUTCOMES_STREAM)).toBe(1);

    const stored = await messages(nats, TICKETS_STREAM);
    // Inject a ticket (which would start a run) through JetStream or as a plain publish.
    await expect(
      js.publish(ticketSubject("dispatch", "new"), ticketBody("dispatch:forged"), { timeout: 1_000 }),
    ).rejects.toThrow(PERMISSION);
    operator.publish(ticketSubject("github", "new"), ticketBody("github:forged"));
    await operator.flush();
    expect(await messages(nats, TICKETS_STREAM)).toBe(stored);
    // A consumer of its own (e.g. one that redelivers everything), or deleting the queue.
    const jsm = await jetstreamManager(operator);
    await expect(
      jsm.consumers.add(TICKETS_STREAM, { durable_name: "replay", ack_policy: AckPolicy.Explicit }),
    ).rejects.toThrow(PERMISSION);
    await expect(jsm.streams.delete(TICKETS_STREAM)).rejects.toThrow(PERMISSION);
    await expect(jsm.consumers.delete(TICKETS_STREAM, TICKETS_CONSUMER)).rejects.toThrow(PERMISSION);
    expect(await subscriptionError(operator, "_INBOX_gateway.>")).toMatchObject({
      message: expect.stringMatching(PERMISSION),
    });
  });

  it("lets the pattern job read OUTCOMES (the real readers) and write nothing", async () => {
    // Positive control: both product readers, as the patterns user.
    const auth = nats.clientAuth("patterns");
    const read = await readOutcomes(nats.url, undefined, auth);
    expect(read.streamFound).toBe(true);
    expect(read.records.length + read.bad).toBe(1);
    const lines: string[] = [];
    await exportOutcomes({ natsUrl: nats.url, auth, write: (l) => void lines.push(l), onSkipped: () => {} });

    const patterns = await as("patterns");
    const js = jetstream(patterns);
    await expect(js.publish(outcomeSubject("clean"), "{}", { timeout: 1_000 })).rejects.toThrow(PERMISSION);
    await expect(js.publish(ticketSubject("github", "new"), "{}", { timeout: 1_000 })).rejects.toThrow(PERMISSION);
    await expect(js.consumers.get(TICKETS_STREAM, TICKETS_CONSUMER)).rejects.toThrow(PERMISSION);
    await expect((await jetstreamManager(patterns)).streams.purge(OUTCOMES_STREAM)).rejects.toThrow(PERMISSION);
    expect(await messages(nats, OUTCOMES_STREAM)).toBe(1);
  });

  it("logged a permissions violation for the attacks only (the controls needed no more)", () => {
    const violations = nats.violations();
    expect(violations.length).toBeGreaterThan(10);
    for (const line of violations)
      expect(line).not.toMatch(/sec-1|MSG\.NEXT|\$JS\.ACK|STREAM\.CREATE|STREAM\.INFO|API\.INFO"/);
  });
});

describe("runner pods and NATS", () => {
  it("get no NATS setting from the operator, though the operator holds its own credentials", async () => {
    const config = loadConfig({
      NATS_URL: "nats://nats:4222",
      NATS_USER: "operator",
      NATS_PASSWORD: "poperatorsecret000000",
      NATS_TLS_CA_FILE: "/etc/agentfactory/nats-ca/ca.crt",
    });
    const job = buildJob(
      { run: agentRun(), stage: "write", attempt: 1, jobName: "j-write-1", secretName: "j-write-1", budgetUsd: 1 },
      jobSettings(config),
    );
    const text = JSON.stringify(job);
    expect(text).not.toMatch(/NATS|poperatorsecret|nats-ca|nats-auth/i);
    // With nothing else to connect with, a runner is an anonymous client: refused (above).
    const nats = await startNats();
    try {
      const env = Object.fromEntries((job.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
      await expect(
        connect({ servers: nats.url, user: env.NATS_USER, pass: env.NATS_PASSWORD, reconnect: false }),
      ).rejects.toMatchObject({ name: "AuthorizationError" });
    } finally {
      await nats.stop();
    }
  });
});

describe("NATS TLS as the chart renders it", () => {
  let dir: string;
  let nats: NatsServer;
  const ca = () => join(dir, "ca.crt");

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "af-nats-tls-"));
    const ssl = (...args: string[]) => run("openssl", args, { cwd: dir });
    const key = ["-newkey", "rsa:2048", "-nodes"];
    await ssl(
      "req",
      "-x509",
      ...key,
      "-days",
      "1",
      "-subj",
      "/CN=agentfactory test CA",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
    );
    await ssl("req", ...key, "-subj", "/CN=nats", "-keyout", "tls.key", "-out", "tls.csr");
    await writeFile(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    await ssl(
      "x509",
      ...["-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1"],
      ...["-extfile", "san.ext", "-out", "tls.crt"],
    );
    await ssl(
      "req",
      "-x509",
      ...key,
      "-days",
      "1",
      "-subj",
      "/CN=other CA",
      "-keyout",
      "other.key",
      "-out",
      "other.crt",
    );

    const objects = await render({
      values: ["charts/agentfactory/ci/default-values.yaml"],
      setTyped: { "nats.tls.enabled": "true" },
      set: { "nats.tls.secretName": "nats-server-tls" },
    });
    const passwords = chartPasswords(objects);
    const text = forLoopback(find(objects, "ConfigMap", "-nats").data["nats.conf"]).replaceAll(
      "/etc/nats-tls/",
      `${dir}/`,
    );
    expect(text).toContain(`cert_file: ${dir}/tls.crt`);
    nats = await startNats({
      config: {
        text,
        env: { POD_NAME: "nats-0", ...Object.fromEntries(NATS_CLIENTS.map((c) => [natsPasswordEnv(c), passwords[c]])) },
        passwords,
        caFile: ca(),
      },
    });
  });
  afterAll(async () => {
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("admits a client that verifies the server against the CA, over TLS", async () => {
    const options = nats.options("gateway");
    expect(options.tls).toEqual({ caFile: ca() });
    const nc = await connect({ ...options, reconnect: false });
    expect(nc.info?.tls_required).toBe(true);
    await nc.close();
  });

  it("refuses clients that do not trust the CA, and plaintext clients", async () => {
    const { tls: _tls, ...plain } = nats.options("gateway");
    // No CA given: the client tries TLS, the system trust store does not know the test CA.
    await expect(connect({ ...plain, reconnect: false })).rejects.toThrow(/certificate|self.signed|issuer/i);
    await expect(connect({ ...plain, tls: { caFile: join(dir, "other.crt") }, reconnect: false })).rejects.toThrow(
      /certificate|self.signed|issuer/i,
    );
  });

  it("a client given a CA refuses a server without TLS (no silent downgrade)", async () => {
    const plainServer = await startNats();
    try {
      await expect(
        connect({ ...plainServer.options("gateway"), tls: { caFile: ca() }, reconnect: false }),
      ).rejects.toThrow(/tls/i);
    } finally {
      await plainServer.stop();
    }
  });
});

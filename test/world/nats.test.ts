import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsServer, startNats } from "./nats.ts";

describe("startNats", () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it("runs JetStream on a loopback port and keeps the file store across a restart on the same port", async () => {
    expect(nats.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    const nc = await connect(nats.options("admin"));
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "WORLD", subjects: ["world.>"] });
    const ack = await jetstream(nc).publish("world.one", "hello", { msgID: "one" });
    expect(ack.seq).toBe(1);
    await nc.close();

    const port = nats.port;
    await nats.restart();
    expect(nats.port).toBe(port);

    const again = await connect(nats.options("admin"));
    const info = await (await jetstreamManager(again)).streams.info("WORLD");
    expect(info.state.messages).toBe(1);
    await again.close();
  });

  it("enforces the production users by default: anonymous refused, each client as its own user", async () => {
    expect(nats.auth).toBe(true);
    await expect(connect({ servers: nats.url, reconnect: false })).rejects.toMatchObject({
      name: "AuthorizationError",
    });
    const gateway = await connect(nats.options("gateway"));
    expect(gateway.info?.auth_required).toBe(true);
    gateway.publish("outcomes.clean", "not the gateway's subject");
    await gateway.flush();
    await gateway.close();
    await expect
      .poll(() => nats.violations().join("\n"))
      .toMatch(/Publish Violation - User "gateway", Subject "outcomes.clean"/);
    expect(nats.env("operator")).toEqual({
      NATS_URL: nats.url,
      NATS_USER: "operator",
      NATS_PASSWORD: nats.password("operator"),
    });
  });

  it("runs without users when asked (auth: false)", async () => {
    const open = await startNats({ auth: false });
    try {
      expect(open.auth).toBe(false);
      const nc = await connect({ servers: open.url, reconnect: false });
      await nc.close();
      expect(open.env("gateway")).toEqual({ NATS_URL: open.url });
    } finally {
      await open.stop();
    }
  });
});

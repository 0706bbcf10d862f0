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
});

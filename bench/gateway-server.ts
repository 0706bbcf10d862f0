// The gateway under benchmark, in its own process (so autocannon's CPU is not counted against it).
// argv[2] = "verified": the real app (verify + sanitize + JetStream publish; senders are checked by the operator);
// "bare": a Hono app with the same middleware (request id, body limit) that reads the body and
// answers 202 without verifying or publishing. Prints `port=<n>` once listening.
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import { natsAuthOptions } from "../core/nats-auth.ts";
import { createApp } from "../gateway/app.ts";
import { limitBody } from "../gateway/body-limit.ts";
import { createLogger } from "../gateway/log.ts";
import { natsPublisher } from "../gateway/publisher.ts";

const mode = process.argv[2];
const secret = process.env.GITHUB_WEBHOOK_SECRET ?? "";
const logger = createLogger({ level: process.env.LOG_LEVEL ?? "info" });

let fetchHandler: (req: Request) => Response | Promise<Response>;
let publisher: ReturnType<typeof natsPublisher> | undefined;
if (mode === "verified") {
  publisher = natsPublisher({
    servers: process.env.NATS_URL ?? "",
    auth: natsAuthOptions("gateway", process.env),
    logger,
  });
  await publisher.connected;
  fetchHandler = createApp({
    publisher,
    logger,
    config: { github: { webhookSecret: secret, triggerLabel: "ai-agent" }, bodyLimitBytes: 1 << 20 },
  }).fetch;
} else {
  const app = new Hono();
  app.use(requestId());
  app.post("/webhooks/github", limitBody(1 << 20), async (c) => {
    await c.req.text();
    return c.json({ id: `github:${c.req.header("x-github-delivery")}` }, 202);
  });
  fetchHandler = app.fetch;
}

// CPU time per request, robust against other load on the machine: reported on SIGTERM.
let served = 0;
let cpuAtReset = process.cpuUsage();
const counted = (req: Request) => {
  if (req.headers.get("x-bench-reset")) {
    served = 0;
    cpuAtReset = process.cpuUsage();
    return new Response("reset");
  }
  served++;
  return fetchHandler(req);
};

const server = serve({ fetch: counted, port: 0, hostname: "127.0.0.1" }, (info) => {
  process.stdout.write(`port=${info.port}\n`);
});
process.on("SIGTERM", () => {
  const cpu = process.cpuUsage(cpuAtReset);
  process.stdout.write(`served=${served} cpu_us=${cpu.user + cpu.system}\n`);
  server.close();
  void (publisher?.close() ?? Promise.resolve()).then(() => process.exit(0));
});

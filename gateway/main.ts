import { serve } from "@hono/node-server";
import { collectDefaultMetrics } from "prom-client";
import { natsAuthOptions } from "../core/nats-auth.ts";
import { createApp } from "./app.ts";
import { clickUpClient } from "./clickup-api.ts";
import { appConfig, loadEnv } from "./config.ts";
import { createLogger } from "./log.ts";
import { gatewayMetrics } from "./metrics.ts";
import { natsPublisher } from "./publisher.ts";

// Wiring only: configuration, dependencies, server, shutdown.
const env = loadEnv(process.env);
const logger = createLogger({
  level: env.LOG_LEVEL,
  secrets: [
    env.GITHUB_WEBHOOK_SECRET,
    env.CLICKUP_WEBHOOK_SECRET,
    env.CLICKUP_API_TOKEN,
    env.DISPATCH_TOKEN,
    env.NATS_PASSWORD,
  ],
});
const metrics = gatewayMetrics();
collectDefaultMetrics({ register: metrics.registry }); // process CPU, memory, event-loop lag
const publisher = natsPublisher({
  servers: env.NATS_URL,
  auth: natsAuthOptions("gateway", env),
  logger,
  publishTimeoutMs: env.NATS_PUBLISH_TIMEOUT_MS,
});
const clickup = env.CLICKUP_API_TOKEN
  ? clickUpClient({ apiUrl: env.CLICKUP_API_URL, token: env.CLICKUP_API_TOKEN })
  : undefined;

const app = createApp({
  publisher,
  config: appConfig(env),
  logger,
  metrics,
  ...(clickup ? { clickup } : {}),
});

const server = serve({ fetch: app.fetch, port: env.PORT, hostname: env.HOST }, (info) => {
  logger.info(
    {
      event: "listening",
      port: info.port,
      sources: Object.keys(appConfig(env)).filter((k) => k !== "bodyLimitBytes"),
      config: env,
    },
    "gateway listening",
  );
});

let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ event: "shutdown", signal }, "stopping: no new requests, draining NATS");
  // Stop accepting, let in-flight requests finish (their publishes are awaited), then drain NATS.
  server.close(async () => {
    await publisher.close();
    logger.info({ event: "stopped" }, "gateway stopped");
    process.exit(0);
  });
  setTimeout(() => process.exit(1), 10_000).unref();
};
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));

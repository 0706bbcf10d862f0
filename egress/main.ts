import { startEgress } from "./server.ts";

// Wiring only: configuration, servers, shutdown.
const egress = await startEgress(process.env);
egress.logger.info(
  {
    event: "listening",
    port: egress.port,
    adminPort: egress.adminPort,
    metricsPort: egress.metricsPort,
    model: egress.config.model.baseUrl,
    forge: { api: egress.config.forge.apiUrl, git: egress.config.forge.gitUrl },
    connectAllow: egress.env.CONNECT_ALLOW,
  },
  "egress gateway listening",
);

let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  egress.logger.info({ event: "shutdown", signal }, "stopping: no new requests, finishing streams");
  egress.close().then(
    () => {
      egress.logger.info({ event: "stopped" }, "egress gateway stopped");
      process.exit(0);
    },
    () => process.exit(1),
  );
  // Under the chart's terminationGracePeriodSeconds (120): long model streams get to finish.
  setTimeout(() => process.exit(1), 100_000).unref();
};
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));

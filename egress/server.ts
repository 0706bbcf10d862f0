import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { serve } from "@hono/node-server";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect as natsConnect } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { collectDefaultMetrics } from "prom-client";
import { Agent } from "undici";
import { natsAuthOptions } from "../core/nats-auth.ts";
import { adminApp, metricsApp } from "./admin.ts";
import { proxyApp } from "./app.ts";
import { type EgressConfig, type EgressEnv, loadConfig } from "./config.ts";
import { connectHandler } from "./connect.ts";
import type { EgressDeps } from "./http.ts";
import { Ledger, pendingLedger } from "./ledger.ts";
import { createLogger } from "./log.ts";
import { egressMetrics } from "./metrics.ts";
import { PushInspector } from "./push-inspect.ts";
import { Sealer } from "./seal.ts";

export interface RunningEgress {
  port: number;
  adminPort: number;
  metricsPort: number;
  env: EgressEnv;
  config: EgressConfig;
  logger: Logger;
  /** Stops accepting, lets in-flight requests finish, drains NATS. */
  close(): Promise<void>;
}

function listen(app: { fetch: (r: Request, env: unknown) => unknown }, port: number, host: string) {
  return new Promise<Server>((resolve) => {
    const server = serve({ fetch: app.fetch as never, port, hostname: host }, () =>
      resolve(server as Server),
    ) as Server;
  });
}

/** Wires the egress gateway from its environment and starts both listeners. */
export async function startEgress(raw: Record<string, string | undefined>, logger?: Logger): Promise<RunningEgress> {
  const { env, config } = loadConfig(raw);
  const log = logger ?? createLogger({ level: env.LOG_LEVEL });
  const metrics = egressMetrics();
  collectDefaultMetrics({ register: metrics.registry });
  // Serve from the start, unready until NATS answers (a gateway that exits instead would crash-loop
  // whenever NATS restarts slower than it does).
  let nc: NatsConnection | undefined;
  const opening = (async () => {
    nc = await natsConnect({
      servers: env.NATS_URL,
      ...natsAuthOptions("egress", env),
      name: "agentfactory-egress",
      maxReconnectAttempts: -1,
      waitOnFirstConnect: true,
    });
    return Ledger.open(nc, {
      bucket: env.LEDGER_BUCKET,
      ttlMs: env.LEDGER_TTL_SECONDS * 1000,
      replicas: env.LEDGER_REPLICAS,
      holdTimeoutMs: config.holdTimeoutMs,
      onConflict: () => metrics.ledgerConflicts.inc(),
    });
  })();
  opening.then(
    () => log.info({ event: "ledger_ready", bucket: env.LEDGER_BUCKET }, "budget ledger ready"),
    (err: unknown) => log.error({ event: "ledger_failed", err: String(err) }, "budget ledger could not be opened"),
  );
  const ledger = pendingLedger(opening);
  const deps: EgressDeps = {
    config,
    ledger,
    sealer: new Sealer(config.attemptKey),
    inspector: new PushInspector({ cacheDir: config.forge.gitCacheDir, gitUrl: config.forge.gitUrl }),
    logger: log,
    metrics,
    dispatcher: new Agent({ keepAliveTimeout: 30_000, connections: 512, pipelining: 1 }),
  };
  const ready = () => ledger.ready() && nc?.isClosed() === false;
  const proxy = await listen(proxyApp(deps, ready), env.PORT, env.HOST);
  // Streams run for minutes; the defaults would cut long model streams and big fetches.
  proxy.requestTimeout = 0;
  proxy.headersTimeout = 60_000;
  const tunnels = new Set<Duplex>();
  proxy.on("connect", connectHandler(deps, tunnels));
  const admin = await listen(adminApp(deps), env.ADMIN_PORT, env.HOST);
  const metricsServer = await listen(metricsApp(deps, ready), env.METRICS_PORT, env.HOST);
  const portOf = (s: Server) => (s.address() as AddressInfo).port;
  return {
    port: portOf(proxy),
    adminPort: portOf(admin),
    metricsPort: portOf(metricsServer),
    env,
    config,
    logger: log,
    async close() {
      for (const socket of tunnels) socket.destroy();
      await Promise.all([proxy, admin].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      await deps.dispatcher.close();
      if (nc && !nc.isClosed()) await nc.drain();
    },
  };
}

/**
 * The operator process: configuration, probes and /metrics, leader election, then the ticket
 * consumer and the AgentRun controller. Wiring only; run with `node --import tsx operator/main.ts`.
 */
import { createServer, type Server } from "node:http";
import { hostname } from "node:os";
import { AuthorizationV1Api } from "@kubernetes/client-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import type { AgentRun } from "../core/agentrun.ts";
import { natsAuthOptions } from "../core/nats-auth.ts";
import { createRedactor, logRedaction } from "../core/redact.ts";
import { outcomeSubject } from "../core/streams.ts";
import { type Config, loadConfig, planOptions, runDefaults } from "./config.ts";
import { ensureStreams, TicketConsumer } from "./consumer.ts";
import { Controller } from "./controller.ts";
import { EgressAdmin } from "./egress.ts";
import { Finalizer } from "./finalize.ts";
import { Forge } from "./forge.ts";
import { type JobSettings, SANDBOX_DEFAULTS, VOLUME_SIZE_LIMITS } from "./job.ts";
import { KubeClient, loadKubeConfig, statusCode } from "./kube/client.ts";
import { LeaderElector } from "./kube/leader.ts";
import { describeMissing, formatPermission, missingPermissions } from "./kube/permissions.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { quantityProblems } from "./quantity.ts";
import { SenderGate } from "./senders.ts";

export function jobSettings(c: Config): JobSettings {
  return {
    image: c.RUNNER_IMAGE,
    imagePullPolicy: c.RUNNER_IMAGE_PULL_POLICY,
    ...(c.RUNNER_IMAGE_PULL_SECRETS.length ? { imagePullSecrets: c.RUNNER_IMAGE_PULL_SECRETS } : {}),
    terminationGracePeriodSeconds: c.RUNNER_TERMINATION_GRACE_SECONDS,
    ...(c.RUNTIME_CLASS_NAME ? { runtimeClassName: c.RUNTIME_CLASS_NAME } : {}),
    ...(c.RUNNER_SERVICE_ACCOUNT ? { serviceAccountName: c.RUNNER_SERVICE_ACCOUNT } : {}),
    resources: {
      cpuLimit: c.RUNNER_CPU_LIMIT,
      memoryLimit: c.RUNNER_MEMORY_LIMIT,
      cpuRequest: c.RUNNER_CPU_REQUEST,
      memoryRequest: c.RUNNER_MEMORY_REQUEST,
      ephemeralStorageRequest: c.RUNNER_EPHEMERAL_STORAGE_REQUEST,
      ephemeralStorageLimit: c.RUNNER_EPHEMERAL_STORAGE_LIMIT,
    },
    sandbox: sandboxSettings(c),
    volumeSizeLimits: volumeSizeLimits(c.RUNNER_VOLUME_SIZE_LIMITS),
    maxTurns: c.RUNNER_MAX_TURNS,
    ...(c.RUNNER_TEST_COMMAND ? { testCommand: c.RUNNER_TEST_COMMAND } : {}),
    ttlSecondsAfterFinished: c.JOB_TTL_SECONDS,
    githubApiUrl: c.GITHUB_API_URL,
    githubServerUrl: c.GITHUB_SERVER_URL,
    modelSecretName: c.MODEL_SECRET_NAME,
    modelSecretKey: c.MODEL_SECRET_KEY,
    ...(c.ANTHROPIC_BASE_URL ? { anthropicBaseUrl: c.ANTHROPIC_BASE_URL } : {}),
    ...(c.egress ? { egress: { url: c.egress.url } } : {}),
  };
}

function sandboxSettings(c: Config): JobSettings["sandbox"] {
  const d = SANDBOX_DEFAULTS.resources;
  return {
    resources: {
      cpuRequest: c.SANDBOX_CPU_REQUEST ?? d.cpuRequest,
      cpuLimit: c.SANDBOX_CPU_LIMIT ?? d.cpuLimit,
      memoryRequest: c.SANDBOX_MEMORY_REQUEST ?? d.memoryRequest,
      memoryLimit: c.SANDBOX_MEMORY_LIMIT ?? d.memoryLimit,
      ephemeralStorageRequest: c.SANDBOX_EPHEMERAL_STORAGE_REQUEST ?? d.ephemeralStorageRequest,
      ephemeralStorageLimit: c.SANDBOX_EPHEMERAL_STORAGE_LIMIT ?? d.ephemeralStorageLimit,
    },
    maxProcesses: c.SANDBOX_MAX_PROCESSES ?? SANDBOX_DEFAULTS.maxProcesses,
  };
}

/** RUNNER_VOLUME_SIZE_LIMITS: JSON of volume name to quantity; unknown names are refused. */
export function volumeSizeLimits(json: string | undefined): JobSettings["volumeSizeLimits"] {
  if (!json) return {};
  const parsed = JSON.parse(json) as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (!(name in VOLUME_SIZE_LIMITS)) throw new Error(`RUNNER_VOLUME_SIZE_LIMITS: unknown volume ${name}`);
    if (value !== null && value !== "") out[name] = String(value);
  }
  return out;
}

function startHttp(c: Config, metrics: Metrics, ready: () => boolean): Promise<Server> {
  const server = createServer(async (req, res) => {
    const url = req.url ?? "/";
    if (url.startsWith("/healthz")) return res.writeHead(200).end("ok");
    if (url.startsWith("/readyz")) return ready() ? res.writeHead(200).end("ok") : res.writeHead(503).end("not ready");
    if (url.startsWith("/metrics")) {
      res.writeHead(200, { "Content-Type": metrics.registry.contentType });
      return res.end(await metrics.registry.metrics());
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve) => server.listen(c.METRICS_PORT, c.METRICS_HOST, () => resolve(server)));
}

export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  const config = loadConfig(env);
  // One redactor for logs and every text the operator sends: its own secrets plus the pattern set.
  const redact = createRedactor(
    [
      config.githubPrivateKey,
      config.SLACK_WEBHOOK_URL,
      config.CLICKUP_API_TOKEN,
      config.NATS_PASSWORD,
      config.egress?.adminToken,
      config.egress?.attemptTokenKey,
    ].filter((s): s is string => !!s),
  );
  const log = pino({
    level: config.LOG_LEVEL,
    base: { component: "operator" },
    ...logRedaction(redact, ["*.NATS_PASSWORD", "*.pass"]),
  });
  // A bad quantity would be refused (422) on every Job create, forever: stop here, naming the setting.
  const problems = quantityProblems(config);
  if (problems.length > 0) {
    log.fatal({ problems }, `invalid resource quantities in the configuration: ${problems.join("; ")}`);
    process.exit(1);
  }
  const metrics = createMetrics({ defaultMetrics: true, models: [config.DEFAULT_MODEL] });
  const kube = new KubeClient(loadKubeConfig(config.KUBECONFIG_PATH, config.SERVICE_ACCOUNT_ROOT));
  const identity = config.POD_NAME ?? `${hostname()}-${process.pid}`;
  let controller: Controller | undefined;
  let consumer: TicketConsumer | undefined;
  let nc: NatsConnection | undefined;
  let elector: LeaderElector | undefined;

  const server = await startHttp(config, metrics, () => controller?.synced ?? false);
  const addr = server.address();
  log.info({ port: typeof addr === "object" && addr ? addr.port : config.METRICS_PORT, identity }, "http listening");

  let stopping = false;
  const shutdown = async (signal: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    const hard = setTimeout(() => process.exit(code || 1), 20_000);
    hard.unref();
    await consumer?.stop().catch(() => {});
    await controller?.stop().catch(() => {});
    await nc?.drain().catch(() => {});
    await elector?.release().catch(() => {});
    server.close();
    log.info("stopped");
    process.exit(code);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));

  // A Role missing a verb stops the operator here, naming what is missing (not a half-working controller).
  // An API server that cannot answer yet is waited for, as leader election would (probes are already served).
  const authz = kube.kc.makeApiClient(AuthorizationV1Api);
  for (let attempt = 1; ; attempt++) {
    try {
      const missing = await missingPermissions(authz, config.NAMESPACE, { leaderElection: config.LEADER_ELECTION });
      if (missing.length > 0) {
        log.fatal(
          { namespace: config.NAMESPACE, missing: missing.map(formatPermission) },
          describeMissing(missing, config.NAMESPACE),
        );
        process.exit(1);
      }
      break;
    } catch (err) {
      if (statusCode(err) === 401) {
        log.fatal({ err: String(err) }, "the API server refused the operator's credentials (401)");
        process.exit(1);
      }
      if (attempt === 1 || attempt % 10 === 0)
        log.warn({ err: String(err) }, "permission check: API server not answering yet");
      await new Promise((r) => setTimeout(r, Math.min(500 * attempt, 5000)));
    }
  }

  if (config.LEADER_ELECTION) {
    elector = new LeaderElector({
      api: kube.coordination,
      namespace: config.NAMESPACE,
      name: config.LEASE_NAME,
      identity,
      log,
    });
    log.info({ lease: config.LEASE_NAME }, "waiting for leadership");
    await elector.run();
    void elector.lost.then((reason) => {
      log.error({ reason }, "leadership lost; exiting");
      process.exit(1);
    });
  }

  nc = await connect({
    servers: config.NATS_URL,
    ...natsAuthOptions("operator", config),
    name: `agentfactory-operator-${identity}`,
    maxReconnectAttempts: -1,
  });
  const js = jetstream(nc);
  await ensureStreams(await jetstreamManager(nc));

  const forge =
    config.GITHUB_APP_ID && config.githubPrivateKey
      ? new Forge({
          appId: config.GITHUB_APP_ID,
          privateKey: config.githubPrivateKey,
          apiUrl: config.GITHUB_API_URL,
          ...(config.GITHUB_INSTALLATION_ID ? { defaultInstallationId: config.GITHUB_INSTALLATION_ID } : {}),
          ...(config.AGENTFACTORY_BOT_LOGIN ? { botLogin: config.AGENTFACTORY_BOT_LOGIN } : {}),
        })
      : undefined;
  if (!forge)
    log.warn("GITHUB_APP_ID / GITHUB_APP_PRIVATE_KEY not set: stages get no forge token, no forge finalization");
  const finalizer = new Finalizer({
    ...(forge ? { forge } : {}),
    ...(config.SLACK_WEBHOOK_URL ? { slackWebhookUrl: config.SLACK_WEBHOOK_URL } : {}),
    ...(config.SLACK_CHANNEL ? { slackChannel: config.SLACK_CHANNEL } : {}),
    ...(config.CLICKUP_API_TOKEN
      ? { clickup: { apiUrl: config.CLICKUP_API_URL, token: config.CLICKUP_API_TOKEN } }
      : {}),
    redact,
    publishOutcome: async (record) => {
      await js.publish(outcomeSubject(record.outcome), JSON.stringify(record), {
        msgID: `${record.run_id}:${record.phase}`,
      });
      log.info({ run: record.run_id, outcome: record.outcome }, "outcome recorded");
    },
    log,
  });

  controller = new Controller({
    kube,
    namespace: config.NAMESPACE,
    jobSettings: jobSettings(config),
    planOptions: planOptions(config),
    ...(forge ? { forge } : {}),
    ...(config.egress ? { egress: new EgressAdmin(config.egress) } : {}),
    finalizer,
    metrics,
    log,
    concurrency: config.CONCURRENCY,
    qps: config.RATE_LIMIT_QPS,
    burst: config.RATE_LIMIT_BURST,
    resyncMs: config.RESYNC_SECONDS * 1000,
    watchdogMs: config.WATCHDOG_SECONDS * 1000,
  });
  await controller.start();
  log.info({ namespace: config.NAMESPACE }, "controller started");

  if (config.CONSUME_TICKETS) {
    const runs = controller.runs;
    consumer = new TicketConsumer({
      js,
      api: kube,
      defaults: runDefaults(config),
      log,
      metrics,
      concurrency: config.TICKET_CONCURRENCY,
      cache: () => runs.list(config.NAMESPACE) as unknown as AgentRun[],
      ...(forge ? { forge } : {}),
      senders: new SenderGate({ ...(forge ? { forge } : {}), ttlMs: config.PERMISSION_CACHE_TTL_SECONDS * 1000 }),
    });
    consumer.start();
    log.info("ticket consumer started");
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    console.error(JSON.stringify({ level: 50, msg: "operator failed to start", err: String(err?.stack ?? err) }));
    process.exit(1);
  });
}

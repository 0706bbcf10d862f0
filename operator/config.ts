import { readFileSync } from "node:fs";
import { z } from "zod";
import { DEFAULT_PLAN_OPTIONS, type PlanOptions } from "../core/plan.ts";
import type { RunDefaults } from "../core/run-from-ticket.ts";
import type { EgressSettings } from "./egress.ts";

const bool = z
  .union([z.boolean(), z.string()])
  .transform((v) => (typeof v === "boolean" ? v : ["1", "true", "yes", "on"].includes(v.toLowerCase())));
const int = (d: number) => z.coerce.number().int().nonnegative().default(d);
const num = (d: number) => z.coerce.number().nonnegative().default(d);
const optional = z
  .string()
  .optional()
  .transform((v) => (v?.trim() ? v.trim() : undefined));

/**
 * Every setting of the operator, read from the environment (the chart sets them).
 * Example: `loadConfig({ NAMESPACE: "agentfactory", KUBECONFIG_PATH: "/tmp/kubeconfig" })`.
 */
export const ConfigSchema = z.object({
  /** Explicit kubeconfig file; without it the in-cluster service account is used. */
  KUBECONFIG_PATH: optional,
  /**
   * Without KUBECONFIG_PATH: a directory standing for the pod's root filesystem, under which the ServiceAccount
   * files (var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt}) are read. Unset in a pod.
   */
  SERVICE_ACCOUNT_ROOT: optional,
  NAMESPACE: z.string().default("agentfactory"),
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  /** The operator's NATS user and password (core/nats-auth.ts); unset = connect without credentials. */
  NATS_USER: optional,
  NATS_PASSWORD: optional,
  /** CA bundle (PEM) the NATS server's certificate must chain to; set = TLS only. */
  NATS_TLS_CA_FILE: optional,
  /** Set to false to run without the ticket consumer (reconciler only). */
  CONSUME_TICKETS: bool.default(true),
  RUNNER_IMAGE: z.string().default("localhost/agentfactory-runner:dev"),
  RUNNER_IMAGE_PULL_POLICY: z.enum(["Always", "IfNotPresent", "Never"]).default("IfNotPresent"),
  /** Secrets (comma-separated names) the kubelet pulls the runner image with; the chart passes its imagePullSecrets. */
  RUNNER_IMAGE_PULL_SECRETS: z
    .string()
    .default("")
    .transform((v) =>
      v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  RUNTIME_CLASS_NAME: optional,
  /** Seconds between SIGTERM and SIGKILL for stage pods (the runner writes a "Terminated" result at once). */
  RUNNER_TERMINATION_GRACE_SECONDS: z.coerce.number().int().positive().default(15),
  /** Service account of runner pods (its token is never mounted). */
  RUNNER_SERVICE_ACCOUNT: optional,
  RUNNER_CPU_LIMIT: z.string().default("2"),
  RUNNER_MEMORY_LIMIT: z.string().default("2Gi"),
  RUNNER_CPU_REQUEST: z.string().default("250m"),
  RUNNER_MEMORY_REQUEST: z.string().default("512Mi"),
  RUNNER_EPHEMERAL_STORAGE_REQUEST: z.string().default("1Gi"),
  RUNNER_EPHEMERAL_STORAGE_LIMIT: z.string().default("6Gi"),
  /** The stage pod's sandbox container (its defaults: SANDBOX_DEFAULTS in job.ts). */
  SANDBOX_CPU_REQUEST: optional,
  SANDBOX_CPU_LIMIT: optional,
  SANDBOX_MEMORY_REQUEST: optional,
  SANDBOX_MEMORY_LIMIT: optional,
  SANDBOX_EPHEMERAL_STORAGE_REQUEST: optional,
  SANDBOX_EPHEMERAL_STORAGE_LIMIT: optional,
  /** RLIMIT_NPROC of the sandbox's uid. */
  SANDBOX_MAX_PROCESSES: z.coerce.number().int().positive().optional(),
  /** emptyDir sizeLimits of the stage pod, as JSON {"workspace":"8Gi",...} (defaults: VOLUME_SIZE_LIMITS in job.ts). */
  RUNNER_VOLUME_SIZE_LIMITS: optional,
  RUNNER_MAX_TURNS: int(50),
  RUNNER_TEST_COMMAND: optional,
  /** Finished Jobs are kept this long (they carry the results a waiting run still reads). */
  JOB_TTL_SECONDS: int(7 * 24 * 3600),
  GITHUB_APP_ID: optional,
  GITHUB_APP_PRIVATE_KEY: optional,
  GITHUB_APP_PRIVATE_KEY_FILE: optional,
  /** Fallback installation when neither the ticket nor a lookup gives one. */
  GITHUB_INSTALLATION_ID: z.coerce.number().int().positive().optional(),
  GITHUB_API_URL: z.string().default("https://api.github.com"),
  /**
   * The App's login on the forge (`<slug>[bot]`). Only comments, reviews and pull requests by this
   * login count as the factory's own. Unset: asked of the forge (`GET /app`) once.
   */
  AGENTFACTORY_BOT_LOGIN: optional,
  GITHUB_GRAPHQL_URL: optional,
  /** Seconds a GitHub sender's permission (checked before a ticket is applied) stays cached. */
  PERMISSION_CACHE_TTL_SECONDS: int(60),
  GITHUB_SERVER_URL: z.string().default("https://github.com"),
  MODEL_SECRET_NAME: z.string().default("agentfactory-model"),
  MODEL_SECRET_KEY: z.string().default("ANTHROPIC_API_KEY"),
  ANTHROPIC_BASE_URL: optional,
  DEFAULT_PROVIDER: z.string().default("anthropic"),
  DEFAULT_MODEL: z.string().default("claude-sonnet-4-5"),
  DEFAULT_BUDGET_USD: num(5),
  MAX_REMEDIATION_ROUNDS: int(2),
  STAGE_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(1800),
  MAX_ATTEMPTS: z.coerce.number().int().positive().default(DEFAULT_PLAN_OPTIONS.maxAttempts),
  BACKOFF_BASE_SECONDS: num(DEFAULT_PLAN_OPTIONS.backoffBaseSeconds),
  BACKOFF_MAX_SECONDS: num(DEFAULT_PLAN_OPTIONS.backoffMaxSeconds),
  MIN_STAGE_BUDGET_USD: num(DEFAULT_PLAN_OPTIONS.minStageBudgetUsd),
  MAX_QUESTIONS: int(DEFAULT_PLAN_OPTIONS.maxQuestions),
  REPLY_WAIT_SECONDS: int(DEFAULT_PLAN_OPTIONS.replyWaitSeconds),
  SLACK_WEBHOOK_URL: optional,
  SLACK_CHANNEL: optional,
  CLICKUP_API_URL: z.string().default("https://api.clickup.com/api/v2"),
  CLICKUP_API_TOKEN: optional,
  /** HTTP server for /healthz, /readyz, /metrics. 0 picks a free port (logged). */
  METRICS_PORT: int(8080),
  METRICS_HOST: z.string().default("0.0.0.0"),
  LEADER_ELECTION: bool.default(true),
  LEASE_NAME: z.string().default("agentfactory-operator"),
  /** Identity in the Lease; the pod name in a cluster. */
  POD_NAME: optional,
  /**
   * Reconcile workers. They mostly wait on the API server (3 round trips for a new run's first Job),
   * so a burst of tickets needs many in flight; the cost of an idle worker is nil.
   */
  CONCURRENCY: z.coerce.number().int().positive().default(64),
  /** Tickets applied at once by the consumer (one AgentRun create each). */
  TICKET_CONCURRENCY: z.coerce.number().int().positive().default(64),
  /** Global reconcile rate limit (token bucket), per second, and its burst. */
  RATE_LIMIT_QPS: num(50),
  RATE_LIMIT_BURST: int(200),
  RESYNC_SECONDS: num(300),
  /** Restart an informer that saw nothing (not even a reconnect) for this long. */
  WATCHDOG_SECONDS: num(180),
  /**
   * The egress gateway (chart: egress.enabled). On: stage pods get only an attempt token and reach the model
   * and the forge through EGRESS_URL; attempts are reserved and ended on EGRESS_ADMIN_URL; spend is the ledger's.
   */
  EGRESS_ENABLED: bool.default(false),
  EGRESS_URL: optional,
  EGRESS_ADMIN_URL: optional,
  EGRESS_ADMIN_TOKEN: optional,
  EGRESS_ADMIN_TOKEN_FILE: optional,
  EGRESS_ATTEMPT_TOKEN_KEY: optional,
  EGRESS_ATTEMPT_TOKEN_KEY_FILE: optional,
  /** USD the ledger and the runners' own count may differ by without a Warning Event. */
  EGRESS_SPEND_TOLERANCE_USD: num(0.01),
  LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
});
export type Config = z.infer<typeof ConfigSchema> & { githubPrivateKey?: string; egress?: EgressSettings };

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = ConfigSchema.parse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== "")));
  const key =
    parsed.GITHUB_APP_PRIVATE_KEY ??
    (parsed.GITHUB_APP_PRIVATE_KEY_FILE ? readFileSync(parsed.GITHUB_APP_PRIVATE_KEY_FILE, "utf8") : undefined);
  const egress = egressSettings(parsed);
  return {
    ...parsed,
    ...(key ? { githubPrivateKey: key.replace(/\\n/g, "\n") } : {}),
    ...(egress ? { egress } : {}),
  };
}

/** EGRESS_*: undefined when off; throws naming what is missing when on. */
function egressSettings(c: z.infer<typeof ConfigSchema>): EgressSettings | undefined {
  if (!c.EGRESS_ENABLED) return undefined;
  const file = (v: string | undefined, f: string | undefined) => v ?? (f ? readFileSync(f, "utf8").trim() : undefined);
  const adminToken = file(c.EGRESS_ADMIN_TOKEN, c.EGRESS_ADMIN_TOKEN_FILE);
  const attemptTokenKey = file(c.EGRESS_ATTEMPT_TOKEN_KEY, c.EGRESS_ATTEMPT_TOKEN_KEY_FILE);
  const missing = [
    !c.EGRESS_URL && "EGRESS_URL",
    !c.EGRESS_ADMIN_URL && "EGRESS_ADMIN_URL",
    !adminToken && "EGRESS_ADMIN_TOKEN (or _FILE)",
    !attemptTokenKey && "EGRESS_ATTEMPT_TOKEN_KEY (or _FILE)",
  ].filter(Boolean);
  if (missing.length) throw new Error(`EGRESS_ENABLED needs ${missing.join(", ")}`);
  return {
    url: c.EGRESS_URL!,
    adminUrl: c.EGRESS_ADMIN_URL!,
    adminToken: adminToken!,
    attemptTokenKey: attemptTokenKey!,
    spendToleranceUsd: c.EGRESS_SPEND_TOLERANCE_USD,
  };
}

export function planOptions(config: Config): PlanOptions {
  return {
    maxAttempts: config.MAX_ATTEMPTS,
    backoffBaseSeconds: config.BACKOFF_BASE_SECONDS,
    backoffMaxSeconds: config.BACKOFF_MAX_SECONDS,
    minStageBudgetUsd: config.MIN_STAGE_BUDGET_USD,
    maxQuestions: config.MAX_QUESTIONS,
    replyWaitSeconds: config.REPLY_WAIT_SECONDS,
  };
}

export function runDefaults(config: Config): RunDefaults {
  return {
    namespace: config.NAMESPACE,
    model: { provider: config.DEFAULT_PROVIDER, name: config.DEFAULT_MODEL },
    budgetUsd: config.DEFAULT_BUDGET_USD,
    maxRemediationRounds: config.MAX_REMEDIATION_ROUNDS,
    stageTimeoutSeconds: config.STAGE_TIMEOUT_SECONDS,
  };
}

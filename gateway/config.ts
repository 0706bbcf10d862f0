import { z } from "zod";
import { FORGE_LABELS } from "../core/names.ts";

const optionalSecret = z
  .string()
  .optional()
  .transform((v) => (v ? v : undefined));

/** `{"<clickup list id>": "owner/name"}` as JSON. */
const RepoMap = z
  .string()
  .optional()
  .transform((text, ctx) => {
    if (!text) return {};
    try {
      return z.record(z.string(), z.string().regex(/^[\w.-]+\/[\w.-]+$/)).parse(JSON.parse(text));
    } catch {
      ctx.addIssue({ code: "custom", message: 'expected JSON like {"<list id>": "owner/name"}' });
      return z.NEVER;
    }
  });

/** `{"<clickup list id>": ["owner/name", …]}` as JSON: what a task's repository field may choose. */
const RepoAllowlist = z
  .string()
  .optional()
  .transform((text, ctx) => {
    if (!text) return {};
    try {
      return z.record(z.string(), z.array(z.string().regex(/^[\w.-]+\/[\w.-]+$/))).parse(JSON.parse(text));
    } catch {
      ctx.addIssue({ code: "custom", message: 'expected JSON like {"<list id>": ["owner/name"]}' });
      return z.NEVER;
    }
  });

/**
 * The gateway's environment. A source is served only when its secret is set, so an unconfigured
 * source fails closed (404) instead of accepting unsigned requests.
 */
export const GatewayEnv = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    HOST: z.string().default("0.0.0.0"),
    NATS_URL: z.string().default("nats://127.0.0.1:4222"),
    /** The gateway's NATS user and password (core/nats-auth.ts); unset = connect without credentials. */
    NATS_USER: optionalSecret,
    NATS_PASSWORD: optionalSecret,
    /** CA bundle (PEM) the NATS server's certificate must chain to; set = TLS only. */
    NATS_TLS_CA_FILE: optionalSecret,
    /** Milliseconds to wait for the JetStream ack before answering 503. */
    NATS_PUBLISH_TIMEOUT_MS: z.coerce.number().int().positive().default(2_000),
    GITHUB_WEBHOOK_SECRET: optionalSecret,
    TRIGGER_LABEL: z.string().min(1).default(FORGE_LABELS.trigger),
    CLICKUP_WEBHOOK_SECRET: optionalSecret,
    CLICKUP_API_TOKEN: optionalSecret,
    CLICKUP_API_URL: z.string().url().default("https://api.clickup.com/api/v2"),
    CLICKUP_TRIGGER_TAG: z.string().min(1).default(FORGE_LABELS.trigger),
    CLICKUP_REPO_MAP: RepoMap,
    /**
     * Name of a ClickUp custom field holding `owner/name` (or a repository URL). It may only choose the
     * list's repository or one of CLICKUP_REPO_ALLOWLIST's for the list; anything else is refused.
     */
    CLICKUP_REPO_FIELD: z.string().default("repository"),
    CLICKUP_REPO_ALLOWLIST: RepoAllowlist,
    DISPATCH_TOKEN: optionalSecret,
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    BODY_LIMIT_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(1024 * 1024),
  })
  .superRefine((env, ctx) => {
    if (!env.GITHUB_WEBHOOK_SECRET && !env.CLICKUP_WEBHOOK_SECRET && !env.DISPATCH_TOKEN) {
      ctx.addIssue({
        code: "custom",
        message: "no trigger source configured: set GITHUB_WEBHOOK_SECRET, CLICKUP_WEBHOOK_SECRET or DISPATCH_TOKEN",
      });
    }
    if (env.CLICKUP_WEBHOOK_SECRET && !env.CLICKUP_API_TOKEN) {
      ctx.addIssue({ code: "custom", message: "CLICKUP_WEBHOOK_SECRET needs CLICKUP_API_TOKEN (tasks are fetched)" });
    }
  });
export type GatewayEnv = z.infer<typeof GatewayEnv>;

/** What the app itself needs (no connection settings). */
export interface GatewayConfig {
  github?: { webhookSecret: string; triggerLabel: string };
  clickup?: {
    webhookSecret: string;
    triggerTag: string;
    /** List id → its repository; tasks in other lists are refused. */
    repoMap: Record<string, string>;
    /** List id → further repositories the task's repository field may choose. */
    repoAllowlist?: Record<string, string[]>;
    repoField: string;
  };
  dispatch?: { token: string };
  bodyLimitBytes: number;
  /**
   * Milliseconds a trigger request may take before it is answered 503 (the sender retries).
   * Defaults: GitHub 9000 (it waits 10 s), ClickUp 6500 (it waits 7 s), dispatch 9000.
   */
  deadlineMs?: Partial<Record<"github" | "clickup" | "dispatch", number>>;
}

export const DEFAULT_DEADLINE_MS = { github: 9_000, clickup: 6_500, dispatch: 9_000 } as const;

/** Parses `process.env`-like input; throws a readable error listing every problem. */
export function loadEnv(env: Record<string, string | undefined>): GatewayEnv {
  const parsed = GatewayEnv.safeParse(env);
  if (!parsed.success) {
    throw new Error(`invalid gateway configuration:\n${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

export function appConfig(env: GatewayEnv): GatewayConfig {
  return {
    ...(env.GITHUB_WEBHOOK_SECRET
      ? { github: { webhookSecret: env.GITHUB_WEBHOOK_SECRET, triggerLabel: env.TRIGGER_LABEL } }
      : {}),
    ...(env.CLICKUP_WEBHOOK_SECRET
      ? {
          clickup: {
            webhookSecret: env.CLICKUP_WEBHOOK_SECRET,
            triggerTag: env.CLICKUP_TRIGGER_TAG,
            repoMap: env.CLICKUP_REPO_MAP,
            repoAllowlist: env.CLICKUP_REPO_ALLOWLIST,
            repoField: env.CLICKUP_REPO_FIELD,
          },
        }
      : {}),
    ...(env.DISPATCH_TOKEN ? { dispatch: { token: env.DISPATCH_TOKEN } } : {}),
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
  };
}

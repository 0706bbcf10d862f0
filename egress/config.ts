import { readFileSync } from "node:fs";
import { z } from "zod";
import { attemptTokenKey } from "../core/attempt-token.ts";
import { type PriceTable, parsePriceTable } from "../core/pricing.ts";
import { EGRESS_LEDGER_BUCKET } from "../core/streams.ts";

const optional = z
  .string()
  .optional()
  .transform((v) => (v?.trim() ? v : undefined));

const list = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? "")
      .split(/[\s,]+/)
      .map((s) => s.trim())
      .filter(Boolean),
  );

/**
 * The egress gateway's environment. Every secret can be given inline (`X`) or as a file (`X_FILE`, a
 * mounted Secret); the file wins.
 */
export const EgressEnv = z.object({
  /** Runner-facing listener: model, forge and CONNECT traffic. */
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default("0.0.0.0"),
  /** Operator-facing listener: the admin API (bearer ADMIN_TOKEN) and /healthz. */
  ADMIN_PORT: z.coerce.number().int().min(0).max(65535).default(8081),
  /** /metrics, /healthz, /readyz: its own port, so a NetworkPolicy can open it to Prometheus only. */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9090),
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  /** The egress gateway's NATS user and password (core/nats-auth.ts); unset = connect without credentials. */
  NATS_USER: optional,
  NATS_PASSWORD: optional,
  /** CA bundle (PEM) the NATS server's certificate must chain to; set = TLS only. */
  NATS_TLS_CA_FILE: optional,
  /** The ledger's KV bucket; the egress NATS user may use only the default one. */
  LEDGER_BUCKET: z
    .string()
    .regex(/^[\w-]+$/)
    .default(EGRESS_LEDGER_BUCKET),
  /** A run's ledger entry is dropped this long after its last write (the bucket's max age). */
  LEDGER_TTL_SECONDS: z.coerce
    .number()
    .int()
    .positive()
    .default(14 * 24 * 3600),
  /** JetStream replicas of the ledger bucket (1 for a single NATS node). */
  LEDGER_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  /** A hold (a model request's reserved worst-case cost) is released after this long if never settled. */
  HOLD_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(900),
  /** Bytes of request body assumed per input token when reserving a request's worst-case cost. */
  HOLD_BYTES_PER_TOKEN: z.coerce.number().positive().default(3),

  ATTEMPT_TOKEN_KEY: optional,
  ATTEMPT_TOKEN_KEY_FILE: optional,
  ADMIN_TOKEN: optional,
  ADMIN_TOKEN_FILE: optional,

  /** Anthropic Messages API or a compatible base URL (OpenRouter: https://openrouter.ai/api). */
  MODEL_BASE_URL: z.string().url().default("https://api.anthropic.com"),
  MODEL_API_KEY: optional,
  MODEL_API_KEY_FILE: optional,
  /** How the provider key is sent: `x-api-key` (Anthropic) or `bearer` (Authorization, e.g. OpenRouter). */
  MODEL_AUTH: z.enum(["x-api-key", "bearer"]).default("x-api-key"),
  /** Price overrides (core/pricing.ts PriceTable as JSON). */
  PRICES: optional,
  MODEL_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(32 * 1024 * 1024),

  /** REST base of the forge (GHES: https://<host>/api/v3). */
  FORGE_API_URL: z.string().url().default("https://api.github.com"),
  /** Git smart HTTP base of the forge (clone URL = <base>/<owner>/<repo>.git). */
  FORGE_GIT_URL: z.string().url().default("https://github.com"),
  /** Where bare mirrors used to inspect pushes live (an emptyDir in the chart). */
  GIT_CACHE_DIR: z.string().default("/var/cache/agentfactory-egress/git"),
  PUSH_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(256 * 1024 * 1024),
  /** Paths a pushed commit may not touch (minimatch, from the repository root). */
  PROTECTED_PATHS: list.transform((l) => (l.length ? l : [".github/workflows/**", ".claude/settings.json"])),

  /** CONNECT allowlist: `host`, `host:port` or `*.domain` (port 443 when none is given). Empty = none. */
  CONNECT_ALLOW: list,
  CONNECT_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),

  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});
export type EgressEnv = z.infer<typeof EgressEnv>;

/** One CONNECT allowlist entry. */
export interface HostRule {
  /** Lower-case host, or a suffix starting with "." for `*.domain`. */
  host: string;
  wildcard: boolean;
  port: number;
}

/** What the egress gateway needs, secrets resolved. */
export interface EgressConfig {
  attemptKey: Uint8Array;
  adminToken: string;
  model: { baseUrl: string; apiKey: string; auth: "x-api-key" | "bearer"; bodyLimitBytes: number };
  prices: PriceTable;
  holdBytesPerToken: number;
  holdTimeoutMs: number;
  forge: { apiUrl: string; gitUrl: string; gitCacheDir: string; pushLimitBytes: number; protectedPaths: string[] };
  connect: { allow: HostRule[]; timeoutMs: number };
}

function secret(env: EgressEnv, name: "ATTEMPT_TOKEN_KEY" | "ADMIN_TOKEN" | "MODEL_API_KEY"): string | undefined {
  const file = env[`${name}_FILE`];
  const value = file ? readFileSync(file, "utf8").trim() : env[name]?.trim();
  return value || undefined;
}

/** `host`, `host:port`, `*.domain`, `*.domain:port`; IPv6 literals in brackets. */
export function parseHostRule(entry: string): HostRule {
  const m = /^(\*\.)?(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/i.exec(entry.trim());
  if (!m) throw new Error(`CONNECT_ALLOW: not a host[:port] or *.domain[:port]: ${entry}`);
  const port = m[3] ? Number(m[3]) : 443;
  if (port < 1 || port > 65535) throw new Error(`CONNECT_ALLOW: bad port in ${entry}`);
  const host = (m[2] ?? "").toLowerCase().replace(/\.$/, "");
  return m[1] ? { host: `.${host}`, wildcard: true, port } : { host, wildcard: false, port };
}

/** Parses `process.env`-like input into the resolved configuration; throws listing every problem. */
export function loadConfig(raw: Record<string, string | undefined>): { env: EgressEnv; config: EgressConfig } {
  const parsed = EgressEnv.safeParse(raw);
  if (!parsed.success) throw new Error(`invalid egress configuration:\n${z.prettifyError(parsed.error)}`);
  const env = parsed.data;
  const problems: string[] = [];
  const key = secret(env, "ATTEMPT_TOKEN_KEY");
  const adminToken = secret(env, "ADMIN_TOKEN");
  const apiKey = secret(env, "MODEL_API_KEY");
  if (!key) problems.push("ATTEMPT_TOKEN_KEY (or _FILE) is required: the key shared with the operator");
  if (!adminToken || adminToken.length < 16) problems.push("ADMIN_TOKEN (or _FILE) of at least 16 characters");
  if (!apiKey) problems.push("MODEL_API_KEY (or _FILE) is required");
  let attemptKey: Uint8Array | undefined;
  try {
    if (key) attemptKey = attemptTokenKey(key);
  } catch (err) {
    problems.push((err as Error).message);
  }
  let prices: PriceTable = {};
  try {
    prices = parsePriceTable(env.PRICES);
  } catch (err) {
    problems.push(`PRICES: ${(err as Error).message}`);
  }
  let allow: HostRule[] = [];
  try {
    allow = env.CONNECT_ALLOW.map(parseHostRule);
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (problems.length || !attemptKey || !adminToken || !apiKey) {
    throw new Error(`invalid egress configuration:\n${problems.map((p) => `  ✖ ${p}`).join("\n")}`);
  }
  const trim = (url: string) => url.replace(/\/+$/, "");
  return {
    env,
    config: {
      attemptKey,
      adminToken,
      model: {
        baseUrl: trim(env.MODEL_BASE_URL),
        apiKey,
        auth: env.MODEL_AUTH,
        bodyLimitBytes: env.MODEL_BODY_LIMIT_BYTES,
      },
      prices,
      holdBytesPerToken: env.HOLD_BYTES_PER_TOKEN,
      holdTimeoutMs: env.HOLD_TIMEOUT_SECONDS * 1000,
      forge: {
        apiUrl: trim(env.FORGE_API_URL),
        gitUrl: trim(env.FORGE_GIT_URL),
        gitCacheDir: env.GIT_CACHE_DIR,
        pushLimitBytes: env.PUSH_LIMIT_BYTES,
        protectedPaths: env.PROTECTED_PATHS,
      },
      connect: { allow, timeoutMs: env.CONNECT_TIMEOUT_MS },
    },
  };
}

import { z } from "zod";
import { AgentRunTicket } from "../../core/agentrun.ts";
import { PriceTable } from "../../core/pricing.ts";
import { StageName } from "../../core/result.ts";

/** What the operator passes a stage besides the ticket (AGENTFACTORY_CONTEXT). */
export const StageContext = z.object({
  clarifications: z.array(z.object({ author: z.string(), body: z.string(), at: z.string() })).default([]),
  triageSpec: z.string().optional(),
  pullRequest: z
    .object({ number: z.number().int().positive(), url: z.string(), branch: z.string(), headSha: z.string() })
    .optional(),
  round: z.number().int().nonnegative().optional(),
  riskTier: z.string().optional(),
});
export type StageContext = z.infer<typeof StageContext>;

const json = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: "custom", message: "not JSON" });
        return z.NEVER;
      }
    })
    .pipe(schema);

const DEFAULT_MODEL: Record<StageName, string> = {
  triage: "claude-haiku-4-5",
  write: "claude-sonnet-4-6",
  review: "claude-sonnet-4-6",
  remediate: "claude-sonnet-4-6",
};
const DEFAULT_MAX_TURNS: Record<StageName, number> = { triage: 8, write: 40, review: 15, remediate: 25 };

const Env = z.object({
  AGENTFACTORY_STAGE: StageName,
  AGENTFACTORY_RUN: z.string().min(1),
  AGENTFACTORY_ATTEMPT: z.coerce.number().int().positive().default(1),
  AGENTFACTORY_TICKET: json(AgentRunTicket),
  AGENTFACTORY_CONTEXT: json(StageContext).default({ clarifications: [] }),
  AGENTFACTORY_REQUEST_ID: z.string().default(""),
  AGENTFACTORY_PROVIDER: z.enum(["anthropic", "bedrock", "vertex"]).default("anthropic"),
  AGENTFACTORY_MODEL: z.string().optional(),
  AGENTFACTORY_BUDGET_USD: z.coerce.number().positive().default(2),
  AGENTFACTORY_MAX_TURNS: z.coerce.number().int().positive().optional(),
  AGENTFACTORY_WORKSPACE: z.string().default("/workspace"),
  AGENTFACTORY_TERMINATION_LOG: z.string().default("/dev/termination-log"),
  AGENTFACTORY_TEST_COMMAND: z.string().optional(),
  AGENTFACTORY_BASE_BRANCH: z.string().optional(),
  AGENTFACTORY_PRICES: json(PriceTable).optional(),
  AGENTFACTORY_MAX_RETRIES: z.coerce.number().int().nonnegative().default(4),
  AGENTFACTORY_RETRY_BASE_MS: z.coerce.number().int().nonnegative().default(1000),
  AGENTFACTORY_MAX_TOKENS: z.coerce.number().int().positive().default(8192),
  AGENTFACTORY_CACHE_TTL: z.enum(["5m", "1h"]).default("5m"),
  AGENTFACTORY_MAX_STOP_BLOCKS: z.coerce.number().int().positive().default(3),
  AGENTFACTORY_BASH_TIMEOUT_MS: z.coerce.number().int().positive().default(120_000),
  AGENTFACTORY_TEST_TIMEOUT_MS: z.coerce.number().int().positive().default(600_000),
  AGENTFACTORY_SANDBOX_SOCKET: z.string().optional(),
  GITHUB_API_URL: z.string().default("https://api.github.com"),
  GITHUB_SERVER_URL: z.string().default("https://github.com"),
  GITHUB_TOKEN: z.string().default(""),
  /** The App's login (`<slug>[bot]`): only its comments and reviews count as the factory's own. */
  AGENTFACTORY_BOT_LOGIN: z.string().optional(),
  ANTHROPIC_API_KEY: z.string().optional(),
  ANTHROPIC_AUTH_TOKEN: z.string().optional(),
  ANTHROPIC_BASE_URL: z.string().optional(),
  AWS_REGION: z.string().optional(),
  CLOUD_ML_REGION: z.string().optional(),
  ANTHROPIC_VERTEX_PROJECT_ID: z.string().optional(),
  HOME: z.string().default("/home/runner"),
});

export interface RunnerConfig {
  stage: StageName;
  run: string;
  attempt: number;
  ticket: AgentRunTicket;
  context: StageContext;
  requestId: string;
  provider: "anthropic" | "bedrock" | "vertex";
  model: string;
  budgetUsd: number;
  maxTurns: number;
  workspace: string;
  terminationLog: string;
  testCommand?: string;
  baseBranch?: string;
  prices: PriceTable;
  maxRetries: number;
  retryBaseMs: number;
  maxTokens: number;
  cacheTtl: "5m" | "1h";
  maxStopBlocks: number;
  bashTimeoutMs: number;
  testTimeoutMs: number;
  /** The sandbox container's socket: where every command the agent can influence runs. Unset: locally. */
  sandboxSocket?: string;
  github: { apiUrl: string; serverUrl: string; token: string; botLogin?: string };
  anthropic: {
    apiKey?: string;
    authToken?: string;
    baseUrl?: string;
    awsRegion?: string;
    vertexRegion?: string;
    vertexProject?: string;
  };
  home: string;
  /** Values of every secret the runner holds, for redaction. */
  secrets: string[];
}

/** Names whose values are secrets: never passed to tools, always redacted. */
export function isSecretName(name: string): boolean {
  if (name === "AWS_REGION" || name === "AWS_DEFAULT_REGION" || name.startsWith("AGENTFACTORY_")) return false;
  return /TOKEN|_KEY|KEY$|SECRET|PASSWORD|PASSWD|CREDENTIAL|^AWS_|PRIVATE/i.test(name);
}

/** The secret values in an environment (short values are left out: redacting them would shred ordinary text). */
export function secretValues(env: Record<string, string | undefined>): string[] {
  return Object.entries(env)
    .filter(([name, value]) => isSecretName(name) && value && value.length >= 8)
    .map(([, value]) => value as string);
}

/**
 * Reads the runner's configuration from the pod environment. Throws a readable error naming the
 * variable when one is malformed.
 */
export function loadConfig(env: Record<string, string | undefined>): RunnerConfig {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`invalid configuration: ${issue?.path.join(".") ?? "?"}: ${issue?.message ?? "?"}`);
  }
  const e = parsed.data;
  return {
    stage: e.AGENTFACTORY_STAGE,
    run: e.AGENTFACTORY_RUN,
    attempt: e.AGENTFACTORY_ATTEMPT,
    ticket: e.AGENTFACTORY_TICKET,
    context: e.AGENTFACTORY_CONTEXT,
    requestId: e.AGENTFACTORY_REQUEST_ID,
    provider: e.AGENTFACTORY_PROVIDER,
    // AGENTFACTORY_MODEL_<STAGE> (e.g. a cheaper AGENTFACTORY_MODEL_TRIAGE) beats AGENTFACTORY_MODEL.
    model:
      env[`AGENTFACTORY_MODEL_${e.AGENTFACTORY_STAGE.toUpperCase()}`] ||
      e.AGENTFACTORY_MODEL ||
      DEFAULT_MODEL[e.AGENTFACTORY_STAGE],
    budgetUsd: e.AGENTFACTORY_BUDGET_USD,
    maxTurns: e.AGENTFACTORY_MAX_TURNS ?? DEFAULT_MAX_TURNS[e.AGENTFACTORY_STAGE],
    workspace: e.AGENTFACTORY_WORKSPACE,
    terminationLog: e.AGENTFACTORY_TERMINATION_LOG,
    testCommand: e.AGENTFACTORY_TEST_COMMAND || undefined,
    baseBranch: e.AGENTFACTORY_BASE_BRANCH || undefined,
    prices: e.AGENTFACTORY_PRICES ?? {},
    maxRetries: e.AGENTFACTORY_MAX_RETRIES,
    retryBaseMs: e.AGENTFACTORY_RETRY_BASE_MS,
    maxTokens: e.AGENTFACTORY_MAX_TOKENS,
    cacheTtl: e.AGENTFACTORY_CACHE_TTL,
    maxStopBlocks: e.AGENTFACTORY_MAX_STOP_BLOCKS,
    bashTimeoutMs: e.AGENTFACTORY_BASH_TIMEOUT_MS,
    testTimeoutMs: e.AGENTFACTORY_TEST_TIMEOUT_MS,
    sandboxSocket: e.AGENTFACTORY_SANDBOX_SOCKET || undefined,
    github: {
      apiUrl: e.GITHUB_API_URL.replace(/\/$/, ""),
      serverUrl: e.GITHUB_SERVER_URL.replace(/\/$/, ""),
      token: e.GITHUB_TOKEN,
      ...(e.AGENTFACTORY_BOT_LOGIN ? { botLogin: e.AGENTFACTORY_BOT_LOGIN } : {}),
    },
    anthropic: {
      apiKey: e.ANTHROPIC_API_KEY,
      authToken: e.ANTHROPIC_AUTH_TOKEN,
      baseUrl: e.ANTHROPIC_BASE_URL || undefined,
      awsRegion: e.AWS_REGION,
      vertexRegion: e.CLOUD_ML_REGION,
      vertexProject: e.ANTHROPIC_VERTEX_PROJECT_ID,
    },
    home: e.HOME,
    secrets: secretValues(env),
  };
}

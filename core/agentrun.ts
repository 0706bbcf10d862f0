import { z } from "zod";
import { RiskTier, StageName } from "./result.ts";
import { RepoSlug, TicketSource } from "./ticket.ts";
import { Tokens } from "./usage.ts";

export const GROUP = "agentfactory.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "AgentRun";
export const PLURAL = "agentruns";

export const Phase = z.enum([
  "Pending",
  "Triaging",
  "AwaitingReply",
  "Writing",
  "Reviewing",
  "Remediating",
  "Ready",
  "Escalated",
  "Failed",
  "Cancelled",
]);
export type Phase = z.infer<typeof Phase>;
export const TERMINAL_PHASES: readonly Phase[] = ["Ready", "Escalated", "Failed", "Cancelled"];
export const isTerminal = (phase: Phase | undefined): boolean => !!phase && TERMINAL_PHASES.includes(phase);

export const AgentRunTicket = z.object({
  source: TicketSource,
  /** The ticket id (`<source>:<deliveryId>`) that created the run. */
  id: z.string(),
  workItem: z.string(),
  url: z.string(),
  repo: RepoSlug,
  number: z.number().int().nonnegative(),
  title: z.string(),
  body: z.string(),
  author: z.string(),
  labels: z.array(z.string()).default([]),
  installationId: z.number().int().positive().optional(),
});
export type AgentRunTicket = z.infer<typeof AgentRunTicket>;

export const AgentRunSpec = z.object({
  ticket: AgentRunTicket,
  model: z.object({ provider: z.string().default("anthropic"), name: z.string() }),
  budgetUsd: z.number().positive().default(5),
  maxRemediationRounds: z.number().int().min(0).max(5).default(2),
  stageTimeoutSeconds: z.number().int().positive().default(1800),
  suspend: z.boolean().default(false),
  clarifications: z.array(z.object({ author: z.string(), body: z.string(), at: z.string() })).default([]),
});
export type AgentRunSpec = z.infer<typeof AgentRunSpec>;
export type AgentRunSpecInput = z.input<typeof AgentRunSpec>;

/** metav1.Condition. */
export const Condition = z.object({
  type: z.string(),
  status: z.enum(["True", "False", "Unknown"]),
  reason: z.string(),
  message: z.string().default(""),
  lastTransitionTime: z.string(),
  observedGeneration: z.number().int().optional(),
});
export type Condition = z.infer<typeof Condition>;

export const StageStatus = z.object({
  name: StageName,
  attempt: z.number().int().positive(),
  jobName: z.string(),
  startTime: z.string().optional(),
  completionTime: z.string().optional(),
  /** Running until the Job ends; then Succeeded, Failed (the agent's verdict) or Error (infrastructure). */
  outcome: z.enum(["Running", "Succeeded", "Failed", "Error"]).default("Running"),
  model: z.string().optional(),
  costUsd: z.number().nonnegative().default(0),
  tokens: Tokens.default({ input: 0, output: 0, cacheRead: 0, cacheWrite: 0 }),
  turns: z.number().int().nonnegative().default(0),
  durationSeconds: z.number().nonnegative().default(0),
  message: z.string().default(""),
});
export type StageStatus = z.infer<typeof StageStatus>;

export const AgentRunStatus = z.object({
  observedGeneration: z.number().int().optional(),
  phase: Phase.default("Pending"),
  conditions: z.array(Condition).default([]),
  riskTier: RiskTier.optional(),
  round: z.number().int().nonnegative().default(0),
  questions: z.number().int().nonnegative().default(0),
  pullRequest: z
    .object({ number: z.number().int().positive(), url: z.string(), branch: z.string(), headSha: z.string() })
    .optional(),
  stages: z.array(StageStatus).default([]),
  costUsd: z.number().nonnegative().default(0),
  startTime: z.string().optional(),
  completionTime: z.string().optional(),
  message: z.string().optional(),
});
export type AgentRunStatus = z.infer<typeof AgentRunStatus>;

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
}

export interface AgentRun {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: AgentRunSpec;
  status?: AgentRunStatus;
}

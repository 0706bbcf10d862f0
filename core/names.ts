import { createHash } from "node:crypto";
import { redactText } from "./redact.ts";

/** Label and annotation keys, in one place so the operator, chart and dashboards agree. */
export const LABELS = {
  run: "agentfactory.dev/run",
  stage: "agentfactory.dev/stage",
  attempt: "agentfactory.dev/attempt",
  repo: "agentfactory.dev/repo",
  workItem: "agentfactory.dev/work-item",
  managedBy: "app.kubernetes.io/managed-by",
  component: "app.kubernetes.io/component",
} as const;

export const ANNOTATIONS = {
  requestId: "agentfactory.dev/request-id",
  ticketId: "agentfactory.dev/ticket-id",
  /** sha-256 of the ticket's title and body as the source had them when the run was asked for (`textDigest`). */
  textDigest: "agentfactory.dev/ticket-text-sha256",
} as const;

export const MANAGED_BY = "agentfactory-operator";

/** Forge labels set on issues and pull requests (the seed's contract). */
export const FORGE_LABELS = {
  trigger: "ai-agent",
  needsClarification: "needs-clarification",
  remediationRound: (n: number) => `remediation-round-${n}`,
} as const;

const MAX_NAME = 63;

function hash(text: string, length: number): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

/** Lower-case DNS-1123 label characters only, dashes collapsed, trimmed. */
export function dnsSafe(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-|-$/g, "");
}

/**
 * A name no longer than `max`: kept as is when it fits, otherwise cut and suffixed with a hash of
 * the whole, so two long names never collide (Tekton's approach).
 */
export function shortenName(name: string, max = MAX_NAME): string {
  if (name.length <= max) return name;
  const suffix = hash(name, 8);
  return `${name.slice(0, max - suffix.length - 1).replace(/-+$/, "")}-${suffix}`;
}

/**
 * The AgentRun name for a ticket: deterministic in the ticket id, so a redelivered ticket maps to
 * the same run (409 on create), while a new delivery (re-labeling) yields a new run.
 * Shape: `<repo>-<number>-<hash8>`, at most 40 characters so Job names stay readable.
 */
export function runName(ticket: { id: string; repo: string; number: number; workItem: string }): string {
  const repo = dnsSafe(ticket.repo.split("/")[1] ?? "run").slice(0, 20) || "run";
  const item = ticket.number > 0 ? String(ticket.number) : dnsSafe(ticket.workItem).slice(0, 10);
  return shortenName(`${repo}-${item}-${hash(ticket.id, 8)}`.replace(/-+/g, "-"), 40);
}

/** Job name for one stage attempt: `<run>-<stage>-<attempt>`, hash-shortened to 63 characters. */
export function jobName(run: string, stage: string, attempt: number): string {
  return shortenName(`${run}-${stage}-${attempt}`);
}

/**
 * The agent's branch: `agent/<n>-<slug>` for forge issues, `agent/<workItem>-<slug>` otherwise. A
 * secret pasted into the title never becomes part of a branch name (the operator derives the same name).
 */
export function branchName(ticket: { number: number; workItem: string; title: string }): string {
  const slug = dnsSafe(redactText(ticket.title)).slice(0, 40).replace(/-+$/, "") || "change";
  const id = ticket.number > 0 ? String(ticket.number) : dnsSafe(ticket.workItem);
  return `agent/${id}-${slug}`;
}

const AGENT_BRANCH = /^agent\/(?:(\d+)-)?/;

/**
 * The work item an agent branch belongs to: `agent/<n>-<slug>` → issue n (`gh-<n>`); branches of
 * non-GitHub tickets carry no number, and the branch itself is then the work item. Undefined for a
 * branch that is not an agent branch.
 */
export function workItemOfBranch(branch: string): { number: number; workItem: string } | undefined {
  const m = AGENT_BRANCH.exec(branch);
  if (!m) return undefined;
  const number = Number(m[1] ?? 0);
  return number > 0 ? { number, workItem: `gh-${number}` } : { number: 0, workItem: branch };
}

/** Label-value safe form of `owner/name`. */
export function repoLabel(repo: string): string {
  return shortenName(dnsSafe(repo.replace("/", ".")).replace(/\./g, "-"));
}

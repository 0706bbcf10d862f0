import { createHash } from "node:crypto";
import { z } from "zod";

/** Where a ticket came from. */
export const TicketSource = z.enum(["github", "clickup", "dispatch"]);
export type TicketSource = z.infer<typeof TicketSource>;

/**
 * What a ticket asks for. `new` starts a run; the others steer an existing run of the same
 * work item (`reply` answers a clarifying question, `cancel` stops it).
 */
export const TicketKind = z.enum(["new", "reply", "feedback", "retry", "cancel"]);
export type TicketKind = z.infer<typeof TicketKind>;

export const RepoSlug = z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, "expected owner/name");

/**
 * A ticket as published on the TICKETS stream. Title, body and comment text are untrusted data:
 * the gateway strips HTML comments and invisible characters into `title`/`body` and keeps the
 * original in `original` for audit.
 */
export const Ticket = z.object({
  /**
   * The JetStream Nats-Msg-Id and the seed of the AgentRun name. For signed webhooks it is derived
   * from the signed event itself (`ticketId`), never from a header, so a replay under a new delivery id
   * is the same ticket; otherwise `<source>:<deliveryId>`.
   */
  id: z.string().min(3),
  kind: TicketKind.default("new"),
  source: TicketSource,
  deliveryId: z.string().min(1),
  requestId: z.string().min(1),
  receivedAt: z.string(),
  repo: RepoSlug,
  /** Issue number on the forge (GitHub), or 0 when the source has none. */
  number: z.number().int().nonnegative(),
  /** The work item's own id on its source (`gh-<n>` for GitHub issues, the ClickUp task id). */
  workItem: z.string().min(1),
  url: z.string(),
  title: z.string(),
  body: z.string(),
  author: z.string(),
  /**
   * Who caused the event (the labeler, the commenter, the reviewer) on sources where people act
   * directly: for GitHub the login whose permission on the repository the operator checks before
   * the ticket may start or steer a run (write or admin; a GitHub ticket without one is refused).
   */
  sender: z.string().optional(),
  labels: z.array(z.string()).default([]),
  /** GitHub App installation that delivered the event, when known. */
  installationId: z.number().int().positive().optional(),
  /**
   * The agent pull request a command came from (feedback/retry/cancel on a PR), so the operator
   * can match the run by its `status.pullRequest.number`.
   */
  pullRequest: z
    .object({
      number: z.number().int().positive(),
      /**
       * The head branch, when the event carries it (reviews). A comment on a pull request does not:
       * the operator asks the forge, and drops the command unless the branch is an agent branch.
       */
      branch: z.string().optional(),
    })
    .optional(),
  /** The reply text, for kind=reply/feedback. */
  comment: z.string().optional(),
  original: z.object({ title: z.string(), body: z.string(), comment: z.string().optional() }).optional(),
});
export type Ticket = z.infer<typeof Ticket>;
export type TicketInput = z.input<typeof Ticket>;

/**
 * A ticket id derived from what identifies one event in a signed body (repository, issue, event and
 * action, the event's own id or time): `<source>:<sha-256 prefix>`. The same event always yields the
 * same id, whatever delivery header it arrives under.
 *
 * @example ticketId("github", ["acme/web", 7, "issues.labeled", "ai-agent", "2026-03-01T10:00:00Z"])
 */
export function ticketId(source: TicketSource, parts: readonly (string | number)[]): string {
  return `${source}:${createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 32)}`;
}

/**
 * Fingerprint of a ticket's text as its source has it (before the gateway's sanitizing): a retry
 * compares the issue as it is now with the text a maintainer approved by labeling.
 */
export function textDigest(title: string, body: string): string {
  return createHash("sha256")
    .update(JSON.stringify([title, body]))
    .digest("hex");
}

import type { Ticket } from "../core/ticket.ts";

/** Per-request facts a source needs to build a ticket. */
export interface RequestContext {
  requestId: string;
  /** ISO 8601 time the request arrived. */
  receivedAt: string;
}

/**
 * What a source decided about a verified, parsed request. `event` is the label value for metrics
 * (`issues.labeled`, `taskTagUpdated`, …), known only after verification.
 */
export type Outcome =
  | { action: "publish"; event: string; ticket: Ticket }
  | { action: "ignore"; event: string; reason: string; status?: 200 | 202 }
  | { action: "refuse"; event: string; reason: string; sender: string };

export const ignore = (event: string, reason: string, status?: 200 | 202): Outcome => ({
  action: "ignore",
  event,
  reason,
  ...(status ? { status } : {}),
});

/** JetStream names shared by the gateway (publisher) and the operator (consumer). */
export const TICKETS_STREAM = "TICKETS";
export const TICKETS_SUBJECTS = ["tickets.>"];
/** Subject a ticket is published on: `tickets.<source>.<kind>`. */
export const ticketSubject = (source: string, kind: string): string => `tickets.${source}.${kind}`;
/**
 * How long GitHub offers a delivery for redelivery (its delivery log keeps 3 days). A signed event older
 * than this is refused (422), so a captured webhook can only ever replay inside the duplicate window.
 */
export const REPLAY_HORIZON_MS = 72 * 3600_000;
/**
 * Duplicate window of TICKETS: the replay horizon plus an hour of clock slack. A ticket id is derived
 * from the signed event (see `ticketId`), so any replay of it inside the window is dropped by the broker.
 */
export const TICKETS_DUPLICATE_WINDOW_MS = REPLAY_HORIZON_MS + 3600_000;
/** Durable pull consumer of the operator on TICKETS. */
export const TICKETS_CONSUMER = "agentfactory-operator";
/** Message header carrying the request id from the webhook to the operator. */
export const REQUEST_ID_HEADER = "X-Request-Id";

export const OUTCOMES_STREAM = "OUTCOMES";
export const OUTCOMES_SUBJECTS = ["outcomes.>"];
export const outcomeSubject = (outcome: string): string => `outcomes.${outcome}`;

/**
 * The egress gateway's budget ledger (NATS KV bucket; its stream is `KV_<bucket>`, its subjects
 * `$KV.<bucket>.>`). Fixed: the egress NATS user may touch only this bucket.
 */
export const EGRESS_LEDGER_BUCKET = "agentfactory-egress-ledger";

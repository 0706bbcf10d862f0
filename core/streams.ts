/** JetStream names shared by the gateway (publisher) and the operator (consumer). */
export const TICKETS_STREAM = "TICKETS";
export const TICKETS_SUBJECTS = ["tickets.>"];
/** Subject a ticket is published on: `tickets.<source>.<kind>`. */
export const ticketSubject = (source: string, kind: string): string => `tickets.${source}.${kind}`;
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

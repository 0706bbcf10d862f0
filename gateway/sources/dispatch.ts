import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { RepoSlug, type Ticket, TicketKind } from "../../core/ticket.ts";
import type { Outcome, RequestContext } from "../outcome.ts";
import { sanitizeTicketText } from "../sanitize.ts";

export interface DispatchSourceOptions {
  token: string;
}

export interface DispatchRequest {
  rawBody: ArrayBuffer;
  headers: Headers;
}

/** The body of `POST /dispatch`. */
export const DispatchBody = z.object({
  repo: RepoSlug,
  title: z.string().min(1).max(1_000),
  body: z.string().max(262_144).default(""),
  kind: TicketKind.default("new"),
  /** Issue number on the forge, when the work has one. */
  number: z.number().int().nonnegative().default(0),
  /** Defaults to `gh-<number>` with a number, else `dispatch-<delivery id>`. */
  workItem: z.string().min(1).max(128).optional(),
  url: z.string().max(2_048).default(""),
  author: z.string().max(128).default("dispatch"),
  labels: z.array(z.string().max(128)).max(64).default([]),
  /** Text for reply/feedback. */
  comment: z.string().max(262_144).optional(),
});
export type DispatchBody = z.infer<typeof DispatchBody>;

const DELIVERY_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const digest = (text: string) => createHash("sha256").update(text).digest();

/**
 * Manual dispatch: `Authorization: Bearer <token>` (compared in constant time over SHA-256
 * digests, so the length leaks nothing either), a JSON body checked by `DispatchBody`.
 * `Idempotency-Key` becomes the delivery id, so a client retrying the same request publishes once;
 * without it every request is a new delivery.
 *
 * @example
 * curl -H "Authorization: Bearer $DISPATCH_TOKEN" -d '{"repo":"o/r","title":"Add X","body":"…"}' /dispatch
 * // 202 {"id":"dispatch:…"}
 */
export function dispatchSource({ token }: DispatchSourceOptions) {
  const expected = digest(token);
  const authorized = (header: string | null): boolean => {
    const match = /^Bearer[ ]+(\S+)$/i.exec(header ?? "");
    return !!match && timingSafeEqual(digest(match[1] as string), expected);
  };

  return async function handle({ rawBody, headers }: DispatchRequest, ctx: RequestContext): Promise<Outcome> {
    if (!authorized(headers.get("authorization"))) throw new HTTPException(401, { message: "invalid token" });
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(rawBody).toString("utf8"));
    } catch {
      throw new HTTPException(400, { message: "body is not JSON" });
    }
    const parsed = DispatchBody.safeParse(json);
    if (!parsed.success) throw new HTTPException(400, { message: z.prettifyError(parsed.error) });
    const input = parsed.data;
    const key = headers.get("idempotency-key");
    if (key !== null && !DELIVERY_ID.test(key)) throw new HTTPException(400, { message: "malformed Idempotency-Key" });
    const deliveryId = key ?? randomUUID();
    const ticket: Ticket = {
      id: `dispatch:${deliveryId}`,
      kind: input.kind,
      source: "dispatch",
      deliveryId,
      requestId: ctx.requestId,
      receivedAt: ctx.receivedAt,
      repo: input.repo,
      number: input.number,
      workItem: input.workItem ?? (input.number > 0 ? `gh-${input.number}` : `dispatch-${deliveryId}`),
      url: input.url,
      author: input.author,
      labels: input.labels,
      ...sanitizeTicketText({
        title: input.title,
        body: input.body,
        ...(input.comment !== undefined ? { comment: input.comment } : {}),
      }),
    };
    return { action: "publish", event: input.kind, ticket };
  };
}

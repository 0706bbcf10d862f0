import { createHmac, timingSafeEqual } from "node:crypto";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import type { Ticket } from "../../core/ticket.ts";
import type { ClickUpClient, ClickUpCustomField, ClickUpTask } from "../clickup-api.ts";
import { ignore, type Outcome, type RequestContext } from "../outcome.ts";
import { sanitizeTicketText } from "../sanitize.ts";

export interface ClickUpSourceOptions {
  webhookSecret: string;
  triggerTag: string;
  /** ClickUp list id → `owner/name`. */
  repoMap: Record<string, string>;
  /** Custom field holding `owner/name` or a repository URL; wins over `repoMap`. */
  repoField: string;
  client: ClickUpClient;
}

export interface ClickUpDelivery {
  rawBody: ArrayBuffer;
  headers: Headers;
}

const Tag = z.object({ name: z.string() });
const Webhook = z.object({
  event: z.string().min(1).max(64),
  task_id: z.string().min(1).max(64).optional(),
  webhook_id: z.string().optional(),
  history_items: z
    .array(
      z.object({
        id: z.union([z.string(), z.number()]).transform(String),
        field: z.string().optional(),
        // ClickUp sends the tags added as an array; anything else means no tag was added.
        after: z.unknown().optional(),
      }),
    )
    .default([]),
});
const SLUG = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

/**
 * ClickUp webhooks: `X-Signature` is the lower-case hex HMAC-SHA256 of the raw body with the
 * webhook's secret, compared in constant time before the body is parsed. `taskTagUpdated` adding
 * the trigger tag fetches the task and publishes a `new` ticket for the repository the task maps
 * to; the ticket goes through triage like any other. The delivery id is the history item's id,
 * which ClickUp repeats on its retries.
 *
 * Who may start a run is decided by configuration: only tasks in mapped lists (or carrying the
 * repository field) become tickets.
 */
export function clickupSource({ webhookSecret, triggerTag, repoMap, repoField, client }: ClickUpSourceOptions) {
  const verify = (body: Buffer, signature: string | null): boolean => {
    if (!signature || !/^[0-9a-fA-F]{64}$/.test(signature)) return false;
    const expected = createHmac("sha256", webhookSecret).update(body).digest();
    return timingSafeEqual(expected, Buffer.from(signature, "hex"));
  };

  return async function handle({ rawBody, headers }: ClickUpDelivery, ctx: RequestContext): Promise<Outcome> {
    const body = Buffer.from(rawBody);
    if (!verify(body, headers.get("x-signature"))) throw new HTTPException(401, { message: "invalid signature" });
    let json: unknown;
    try {
      json = JSON.parse(body.toString("utf8"));
    } catch {
      throw new HTTPException(400, { message: "body is not JSON" });
    }
    const parsed = Webhook.safeParse(json);
    if (!parsed.success) throw new HTTPException(400, { message: "unexpected payload" });
    const webhook = parsed.data;
    const event = /^[A-Za-z]+$/.test(webhook.event) ? webhook.event : "other";
    if (webhook.event !== "taskTagUpdated") return ignore(event, "event not handled");
    const added = webhook.history_items.find(
      (item) =>
        item.field === "tag" &&
        Array.isArray(item.after) &&
        item.after.some((tag) => Tag.safeParse(tag).data?.name === triggerTag),
    );
    if (!added) return ignore(event, "trigger tag not added");
    if (!webhook.task_id) throw new HTTPException(400, { message: "task_id missing" });

    const task = await client.getTask(webhook.task_id);
    if (!task) return ignore(event, "task not found");
    const repo = repoOf(task, repoField, repoMap);
    if (!repo) return ignore(event, "task maps to no repository");

    const deliveryId = added.id;
    const ticket: Ticket = {
      id: `clickup:${deliveryId}`,
      kind: "new",
      source: "clickup",
      deliveryId,
      requestId: ctx.requestId,
      receivedAt: ctx.receivedAt,
      repo,
      number: 0,
      workItem: task.id,
      url: task.url,
      author: task.creator?.username ?? "",
      labels: task.tags.map((t) => t.name),
      ...sanitizeTicketText({ title: task.name, body: task.description ?? task.text_content ?? "" }),
    };
    return { action: "publish", event, ticket };
  };
}

/** The task's repository: its repository custom field, else its list's entry in the map. */
export function repoOf(task: ClickUpTask, field: string, repoMap: Record<string, string>): string | undefined {
  const custom = task.custom_fields.find((f) => f.name.toLowerCase() === field.toLowerCase());
  const fromField = custom ? slug(fieldText(custom)) : undefined;
  if (fromField) return fromField;
  return task.list ? repoMap[task.list.id] : undefined;
}

/** Text of a text/url field, or the chosen option's name of a drop-down (value = orderindex or option id). */
function fieldText(field: ClickUpCustomField): string | undefined {
  const { value } = field;
  if (field.type === "drop_down") {
    const option = field.type_config?.options?.find((o) => o.orderindex === Number(value) || o.id === value);
    return option?.name;
  }
  return typeof value === "string" ? value : undefined;
}

/** `owner/name` from `owner/name` or `https://<host>/owner/name(.git)`. */
function slug(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const trimmed = text.trim().replace(/\.git$/, "");
  if (SLUG.test(trimmed)) return trimmed;
  try {
    const path = new URL(trimmed).pathname.split("/").filter(Boolean);
    const candidate = path.slice(0, 2).join("/");
    return SLUG.test(candidate) ? candidate : undefined;
  } catch {
    return undefined;
  }
}

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
  /** ClickUp list id → `owner/name`: the list's repository. Only tasks in listed lists are accepted. */
  repoMap: Record<string, string>;
  /**
   * ClickUp list id → the repositories (`owner/name`) the repository field may choose for a task in
   * that list, besides the list's own. A list named only here is accepted too (the field must choose).
   */
  repoAllowlist?: Record<string, readonly string[]>;
  /** Custom field holding `owner/name` or a repository URL; chooses among the list's allowed repositories. */
  repoField: string;
  /** Called for every refused task (a bounded reason: `unmapped_list`, `repository_not_allowed`, `no_repository`). */
  onRefuse?: (reason: ClickUpRefusal) => void;
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
        user: z.object({ username: z.string().nullish() }).loose().nullish(),
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
 * Who may start a run, and on which repository, is decided by configuration alone: only tasks in
 * mapped lists become tickets, and a task's repository field may only choose among the repositories
 * allowed for its list. Anyone who can edit a task can set the field, so it is never trusted to name a
 * repository by itself; a task that asks for anything else is refused (logged, counted, nothing published).
 */
export function clickupSource({
  webhookSecret,
  triggerTag,
  repoMap,
  repoAllowlist = {},
  repoField,
  client,
  onRefuse,
}: ClickUpSourceOptions) {
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
    const choice = chooseRepo(task, repoField, repoMap, repoAllowlist);
    if (!choice.ok) {
      onRefuse?.(choice.reason);
      const sender = added.user?.username ?? task.creator?.username ?? "";
      return { action: "refuse", event, reason: `${choice.reason}: ${choice.detail}`, sender };
    }
    const repo = choice.repo;

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

export type ClickUpRefusal = "unmapped_list" | "repository_not_allowed" | "no_repository";

export type RepoChoice = { ok: true; repo: string } | { ok: false; reason: ClickUpRefusal; detail: string };

/**
 * The task's repository. The task's list must be mapped (in `repoMap` or `repoAllowlist`); the
 * repository field, when set, must name the list's repository or one allowlisted for the list
 * (compared case-insensitively, as GitHub does; the configured spelling is used); without the field,
 * the list's repository. Anything else is refused, never guessed.
 */
export function chooseRepo(
  task: ClickUpTask,
  field: string,
  repoMap: Record<string, string>,
  repoAllowlist: Record<string, readonly string[]> = {},
): RepoChoice {
  const list = task.list?.id;
  const own = list !== undefined && Object.hasOwn(repoMap, list) ? repoMap[list] : undefined;
  const extra = list !== undefined && Object.hasOwn(repoAllowlist, list) ? (repoAllowlist[list] ?? []) : [];
  if (list === undefined || (own === undefined && extra.length === 0))
    return { ok: false, reason: "unmapped_list", detail: `list ${list ?? "(none)"} is not mapped to a repository` };
  const custom = task.custom_fields.find((f) => f.name.toLowerCase() === field.toLowerCase());
  const raw = custom ? fieldText(custom)?.trim() : undefined;
  if (!raw) {
    if (own) return { ok: true, repo: own };
    return { ok: false, reason: "no_repository", detail: `list ${list} needs the ${field} field set` };
  }
  const wanted = slug(raw);
  const allowed = [...(own ? [own] : []), ...extra];
  const match = wanted && allowed.find((r) => r.toLowerCase() === wanted.toLowerCase());
  if (match) return { ok: true, repo: match };
  return {
    ok: false,
    reason: "repository_not_allowed",
    detail: `the ${field} field names ${JSON.stringify(raw.slice(0, 200))}, not a repository allowed for list ${list}`,
  };
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

import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface ClickUpTaskInput {
  id: string;
  name: string;
  description?: string;
  tags?: string[];
  customFields?: { id?: string; name: string; type?: string; value: unknown }[];
  listId?: string;
  status?: string;
}

export interface ClickUpComment {
  taskId: string;
  comment_text: string;
  notify_all: boolean | undefined;
}

export interface ClickUpSimOptions {
  /** The personal API token expected verbatim in `Authorization` (no "Bearer"). */
  token: string;
  tasks: ClickUpTaskInput[];
  /** The first `times` API calls fail with `status` (429 answers ClickUp's rate-limit body). */
  failures?: { status: number; times: number }[];
}

export interface ClickUpSim {
  /** Server root; the API base is `apiUrl`. */
  url: string;
  /** `${url}/api/v2`, the counterpart of https://api.clickup.com/api/v2. */
  apiUrl: string;
  comments: ClickUpComment[];
  requests: { method: string; path: string; status: number }[];
  addTask(task: ClickUpTaskInput): void;
  stop(): Promise<void>;
}

const USER = {
  id: 183,
  username: "Jo Tester",
  email: "jo@example.test",
  color: "#7b68ee",
  initials: "JT",
  profilePicture: null,
};
const tagJson = (name: string) => ({ name, tag_fg: "#800000", tag_bg: "#2ecd6f", creator: USER.id });

/** The task as `GET /api/v2/task/{id}` returns it. */
export function clickUpTaskJson(t: ClickUpTaskInput) {
  const now = String(Date.now());
  return {
    id: t.id,
    custom_id: null,
    custom_item_id: 0,
    name: t.name,
    text_content: t.description ?? "",
    description: t.description ?? "",
    status: { id: "p_open", status: t.status ?? "to do", color: "#d3d3d3", orderindex: 0, type: "open" },
    orderindex: "1.00000000000000000000000000000000",
    date_created: now,
    date_updated: now,
    date_closed: null,
    date_done: null,
    archived: false,
    creator: USER,
    assignees: [],
    group_assignees: [],
    watchers: [USER],
    checklists: [],
    tags: (t.tags ?? []).map(tagJson),
    parent: null,
    top_level_parent: null,
    priority: null,
    due_date: null,
    start_date: null,
    points: null,
    time_estimate: null,
    custom_fields: (t.customFields ?? []).map((f, i) => ({
      id: f.id ?? `0a52c486-5f05-403b-b4fd-c512ff0513${String(i).padStart(2, "0")}`,
      name: f.name,
      type: f.type ?? "short_text",
      type_config: {},
      date_created: now,
      hide_from_guests: false,
      value: f.value,
      required: false,
    })),
    dependencies: [],
    linked_tasks: [],
    locations: [],
    team_id: "9011",
    url: `https://app.clickup.com/t/${t.id}`,
    sharing: { public: false, public_share_expires_on: null, public_fields: [], token: null, seo_optimized: false },
    permission_level: "create",
    list: { id: t.listId ?? "901100000001", name: "Backlog", access: true },
    project: { id: "90110000002", name: "Engineering", hidden: false, access: true },
    folder: { id: "90110000002", name: "Engineering", hidden: false, access: true },
    space: { id: "90110000003" },
    attachments: [],
  };
}

/**
 * ClickUp API v2 simulator: `GET /api/v2/task/:id` and `POST /api/v2/task/:id/comment`, with ClickUp's
 * auth (the raw token in `Authorization`) and error bodies (`{ err, ECODE }`).
 */
export async function startClickUpSim(opts: ClickUpSimOptions): Promise<ClickUpSim> {
  const tasks = new Map(opts.tasks.map((t) => [t.id, t]));
  const comments: ClickUpComment[] = [];
  const requests: ClickUpSim["requests"] = [];
  const failures = (opts.failures ?? []).map((f) => ({ ...f, left: f.times }));

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? "/", "http://sim");
    const reply = (status: number, body: unknown) => {
      requests.push({ method: req.method ?? "GET", path: url.pathname, status });
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    const auth = req.headers.authorization;
    if (!auth) return reply(400, { err: "Authorization header required", ECODE: "OAUTH_017" });
    if (auth !== opts.token) return reply(401, { err: "Token invalid", ECODE: "OAUTH_025" });
    const failure = failures.find((f) => f.left > 0);
    if (failure) {
      failure.left--;
      return reply(
        failure.status,
        failure.status === 429
          ? { err: "Rate limit reached", ECODE: "APP_002" }
          : { err: "Internal error", ECODE: "APP_001" },
      );
    }
    const m = /^\/api\/v2\/task\/([^/]+)(\/comment)?$/.exec(url.pathname);
    const task = m ? tasks.get(decodeURIComponent(m[1] ?? "")) : undefined;
    if (!m) return reply(404, { err: "Route not found", ECODE: "APP_001" });
    if (!task) return reply(404, { err: "Task not found, deleted", ECODE: "ITEM_013" });
    if (!m[2] && req.method === "GET") {
      const json = clickUpTaskJson(task);
      const markdown = url.searchParams.get("include_markdown_description") === "true";
      return reply(200, markdown ? { ...json, markdown_description: task.description ?? "" } : json);
    }
    if (m[2] && req.method === "POST") {
      let body: { comment_text?: unknown; notify_all?: unknown };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return reply(400, { err: "Invalid JSON", ECODE: "JSON_001" });
      }
      if (typeof body.comment_text !== "string" || body.comment_text === "") {
        return reply(400, { err: "Comment text required", ECODE: "COMM_002" });
      }
      comments.push({
        taskId: task.id,
        comment_text: body.comment_text,
        notify_all: body.notify_all as boolean | undefined,
      });
      return reply(200, {
        id: Number.parseInt(randomBytes(5).toString("hex"), 16),
        hist_id: String(Date.now()),
        date: Date.now(),
      });
    }
    return reply(404, { err: "Route not found", ECODE: "APP_001" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    apiUrl: `${url}/api/v2`,
    comments,
    requests,
    addTask: (t) => void tasks.set(t.id, t),
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** ClickUp's `X-Signature`: lower-case hex HMAC-SHA256 of the raw body with the webhook secret. */
export function signClickUp(secret: string, rawBody: string | Buffer): string {
  return createHmac("sha256", secret).update(rawBody).digest("hex");
}

/**
 * A `taskTagUpdated` webhook payload as ClickUp sends it: `history_items[].after` is an ARRAY of the
 * tag objects that were added.
 */
export function taskTagUpdated(args: { taskId: string; tags: string[]; webhookId?: string; listId?: string }) {
  return {
    event: "taskTagUpdated" as const,
    history_items: [
      {
        id: String(BigInt(Date.now()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000))),
        type: 1,
        date: String(Date.now()),
        field: "tag",
        parent_id: args.listId ?? "901100000001",
        data: {},
        source: null,
        user: USER,
        before: null,
        after: args.tags.map(tagJson),
      },
    ],
    task_id: args.taskId,
    webhook_id: args.webhookId ?? randomUUID(),
  };
}

/** The HTTP request ClickUp would send: raw body and headers including `X-Signature`. */
export function clickUpDelivery(secret: string, payload: unknown): { body: string; headers: Record<string, string> } {
  const body = JSON.stringify(payload);
  return { body, headers: { "content-type": "application/json", "x-signature": signClickUp(secret, body) } };
}

/** Posts a signed ClickUp webhook delivery to `url` (e.g. the gateway's ClickUp endpoint). */
export async function sendClickUpWebhook(url: string, secret: string, payload: unknown): Promise<Response> {
  const { body, headers } = clickUpDelivery(secret, payload);
  return fetch(url, { method: "POST", headers, body });
}

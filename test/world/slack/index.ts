import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** What an incoming webhook received: the JSON payload (text, blocks, channel, attachments...). */
export interface SlackMessage {
  text?: string;
  blocks?: unknown[];
  attachments?: unknown[];
  channel?: string;
  [key: string]: unknown;
}

export interface SlackSimOptions {
  /** The first `times` posts fail with `status` (e.g. 500 to exercise retries, 429 with `retryAfter`). */
  failures?: { status: number; times: number; retryAfter?: number }[];
}

export interface SlackSim {
  /** The incoming-webhook URL (`.../services/T.../B.../<secret>`); other paths answer 404 `no_service`. */
  url: string;
  messages: SlackMessage[];
  /** Every post with its HTTP status, refused ones included. */
  requests: { status: number; body: string }[];
  stop(): Promise<void>;
}

/**
 * Slack incoming-webhook simulator: accepts JSON (or `payload=` form) posts on one secret URL, answers
 * `ok` like Slack, and 400 `invalid_payload` / `no_text` for what Slack refuses.
 */
export async function startSlackSim(opts: SlackSimOptions = {}): Promise<SlackSim> {
  const path = `/services/T${randomBytes(4).toString("hex").toUpperCase()}/B${randomBytes(4).toString("hex").toUpperCase()}/${randomBytes(12).toString("hex")}`;
  const messages: SlackMessage[] = [];
  const requests: SlackSim["requests"] = [];
  const failures = (opts.failures ?? []).map((f) => ({ ...f, left: f.times }));

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    const reply = (status: number, text: string, headers: Record<string, string> = {}) => {
      requests.push({ status, body: raw });
      res.writeHead(status, { "content-type": "text/html", ...headers }).end(text);
    };
    if (req.method !== "POST" || req.url !== path) return reply(404, "no_service");
    const failure = failures.find((f) => f.left > 0);
    if (failure) {
      failure.left--;
      const headers: Record<string, string> =
        failure.retryAfter !== undefined ? { "retry-after": String(failure.retryAfter) } : {};
      return reply(failure.status, failure.status === 429 ? "rate_limited" : "internal_error", headers);
    }
    let payload: unknown;
    try {
      const form = (req.headers["content-type"] ?? "").includes("application/x-www-form-urlencoded");
      payload = JSON.parse(form ? (new URLSearchParams(raw).get("payload") ?? "") : raw);
    } catch {
      return reply(400, "invalid_payload");
    }
    if (!payload || typeof payload !== "object" || Array.isArray(payload)) return reply(400, "invalid_payload");
    const msg = payload as SlackMessage;
    const hasText = typeof msg.text === "string" && msg.text.trim() !== "";
    if (
      !hasText &&
      !(Array.isArray(msg.blocks) && msg.blocks.length) &&
      !(Array.isArray(msg.attachments) && msg.attachments.length)
    ) {
      return reply(400, "no_text");
    }
    if (msg.blocks !== undefined && !Array.isArray(msg.blocks)) return reply(400, "invalid_blocks");
    messages.push(msg);
    reply(200, "ok");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    messages,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

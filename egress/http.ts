import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Context } from "hono";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import type { VerifiedAttempt } from "../core/attempt-token.ts";
import type { EgressConfig } from "./config.ts";
import type { LedgerApi } from "./ledger.ts";
import type { EgressMetrics, Kind } from "./metrics.ts";
import type { PushInspector } from "./push-inspect.ts";
import type { Sealer } from "./seal.ts";

export interface EgressDeps {
  config: EgressConfig;
  ledger: LedgerApi;
  sealer: Sealer;
  inspector: PushInspector;
  logger: Logger;
  metrics: EgressMetrics;
  /** Connection pool for every upstream (model, forge). */
  dispatcher: Dispatcher;
}

/** Headers never copied between the two sides: hop-by-hop, and every credential. */
const DROP_ALWAYS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "host",
  "content-length",
  "authorization",
  "proxy-authorization",
  "x-api-key",
  "cookie",
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
]);

/** The runner's request headers to send upstream, credentials removed, `extra` added. */
export function upstreamHeaders(incoming: Headers, extra: Record<string, string>, drop: string[] = []) {
  const out: Record<string, string> = {};
  const dropped = new Set(drop);
  incoming.forEach((value, name) => {
    if (!DROP_ALWAYS.has(name) && !dropped.has(name)) out[name] = value;
  });
  return { ...out, ...extra };
}

const DROP_RESPONSE = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "set-cookie",
]);

/** The upstream's response headers for the runner (hop-by-hop and cookies removed). */
export function downstreamHeaders(headers: Record<string, string | string[] | undefined>): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || DROP_RESPONSE.has(name.toLowerCase())) continue;
    if (Array.isArray(value)) for (const v of value) out.append(name, v);
    else out.set(name, value);
  }
  return out;
}

/**
 * The upstream body as a web stream for the response, unchanged; `onChunk` sees every chunk as it
 * passes, and `onDone` runs once, before the stream closes (so the charge is written before the
 * runner sees the end), or when the runner goes away or the upstream fails.
 */
export function passThrough(
  body: Readable,
  onChunk: (chunk: Buffer) => void,
  onDone: (error?: unknown) => Promise<void>,
): ReadableStream<Uint8Array> {
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let finished = false;
  const finish = async (error?: unknown) => {
    if (finished) return;
    finished = true;
    await onDone(error);
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { value, done } = await it.next();
          if (done) {
            await finish();
            controller.close();
            return;
          }
          onChunk(value);
          controller.enqueue(value);
        } catch (err) {
          await finish(err);
          controller.error(err);
        }
      },
      async cancel(reason) {
        body.destroy();
        await finish(reason ?? new Error("the runner went away"));
      },
    },
    { highWaterMark: 0 },
  );
}

type NodeEnv = { incoming?: IncomingMessage; outgoing?: ServerResponse } | undefined;

/**
 * Sends the upstream's answer: status, headers, and the body unchanged, written straight to the
 * node response (no web-stream layer per chunk). `onChunk` sees every chunk as it passes; `onDone`
 * runs once, after the last chunk and before the response ends (so the charge is written before the
 * runner sees the end), or when the runner goes away or the upstream fails.
 */
export async function sendUpstream(
  c: Context,
  status: number,
  headers: Headers,
  body: Readable,
  onChunk: (chunk: Buffer) => void,
  onDone: (error?: unknown) => Promise<void>,
): Promise<Response> {
  const out = (c.env as NodeEnv)?.outgoing;
  if (!out) return new Response(passThrough(body, onChunk, onDone), { status, headers });
  const head: Record<string, string> = {};
  headers.forEach((value, name) => {
    head[name] = value;
  });
  out.writeHead(status, head);
  const closed = new Promise<void>((resolve) => out.once("close", resolve));
  let error: unknown;
  // Chunks that arrive in the same turn of the event loop leave in one write (cork until the next
  // turn): a stream of small events otherwise costs a syscall each.
  let corked = false;
  const uncork = () => {
    corked = false;
    out.uncork();
  };
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (out.destroyed) throw new Error("the runner went away");
      onChunk(chunk);
      if (!corked) {
        corked = true;
        out.cork();
        setImmediate(uncork);
      }
      if (!out.write(chunk)) {
        if (corked) uncork();
        await Promise.race([new Promise((r) => out.once("drain", r)), closed]);
      }
    }
    if (corked) uncork();
    if (out.destroyed) throw new Error("the runner went away");
  } catch (err) {
    error = err;
    body.destroy();
  }
  await onDone(error);
  if (error) out.destroy();
  else out.end();
  return RESPONSE_ALREADY_SENT;
}

/** Reads a request body up to `limit` bytes; undefined when it is larger. */
export async function readLimited(c: Context, limit: number): Promise<Buffer | undefined> {
  const req = c.req.raw;
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) return undefined;
  const source = ((c.env as NodeEnv)?.incoming ?? req.body) as AsyncIterable<Uint8Array> | null | undefined;
  if (!source) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of source) {
    size += chunk.byteLength;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Where a request went and for whom (plus any detail worth a log field). */
export interface Where {
  kind: Kind;
  method: string;
  host: string;
  path: string;
  attempt?: VerifiedAttempt;
  [extra: string]: unknown;
}

export interface Outcome extends Where {
  decision: "allowed" | "refused";
  reason?: string;
  status: number;
  bytesUp?: number;
  bytesDown?: number;
  ms?: number;
}

/**
 * One log line and the metrics of a finished request: run, stage, host, method, path, bytes and the
 * decision. A refusal also counts on the run's stage in the ledger; the promise settles after that write.
 */
export function record(deps: EgressDeps, o: Outcome): Promise<void> {
  const { attempt, kind, decision, reason, ...rest } = o;
  deps.metrics.requests.inc({ kind, decision });
  if (decision === "refused") deps.metrics.refused.inc({ kind, reason: reason ?? "refused" });
  if (o.bytesUp) deps.metrics.bytes.inc({ kind, direction: "up" }, o.bytesUp);
  if (o.bytesDown) deps.metrics.bytes.inc({ kind, direction: "down" }, o.bytesDown);
  const line = {
    event: "egress",
    kind,
    decision,
    ...(reason ? { reason } : {}),
    ...(attempt
      ? { run: `${attempt.run.namespace}/${attempt.run.name}`, stage: attempt.stage, attempt: attempt.attempt }
      : {}),
    ...rest,
  };
  if (decision !== "refused") {
    deps.logger.info(line, "egress");
    return Promise.resolve();
  }
  deps.logger.warn(line, "egress refused");
  if (!attempt) return Promise.resolve();
  // Awaited by the refusing handler, so the count is in the ledger when the runner sees the refusal.
  return deps.ledger.countRefusal(attempt).catch((err: unknown) => {
    deps.logger.error({ event: "ledger_error", err: String(err) }, "could not count a refusal");
  });
}

import type { Context } from "hono";
import { request } from "undici";
import type { VerifiedAttempt } from "../core/attempt-token.ts";
import { costUsd, normalizeModel, type PriceTable, priceFor } from "../core/pricing.ts";
import { modelCredential, verify } from "./auth.ts";
import { downstreamHeaders, type EgressDeps, readLimited, record, sendUpstream, upstreamHeaders } from "./http.ts";
import { billed, jsonUsage, SseUsageReader, tokensOf, type WireUsage } from "./usage.ts";

/**
 * The model proxy: `POST /v1/messages` (and `/v1/messages/count_tokens`) in the Messages API's wire
 * format, to Anthropic or any compatible base URL. The attempt token comes in as `x-api-key` or
 * `Authorization: Bearer`; the provider key goes out. The response is passed through byte for byte
 * (streams included) while its usage is read and charged to the run.
 */

/** An error in the Messages API's shape, so the runner's SDK reports it as it would the API's. */
export function apiError(status: number, type: string, message: string, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify({ type: "error", error: { type, message } }), {
    status,
    headers: { "content-type": "application/json", "x-should-retry": "false", ...headers },
  });
}

export const BUDGET_EXHAUSTED = "budget_exhausted";

/**
 * The most a request can cost: every body byte-group an input token (HOLD_BYTES_PER_TOKEN bytes each)
 * at the dearest input rate the request can trigger (1 h cache write, 5 min cache write, or plain
 * input), plus `max_tokens` of output.
 */
export function worstCaseUsd(
  model: string,
  body: string,
  maxTokens: number,
  opts: { prices: PriceTable; bytesPerToken: number },
): number {
  const p = priceFor(model, opts.prices);
  const caching = body.includes("cache_control");
  const inputRate = /"ttl"\s*:\s*"1h"/.test(body)
    ? Math.max(p.cacheWrite1h, p.cacheWrite5m, p.input)
    : caching
      ? Math.max(p.cacheWrite5m, p.input)
      : p.input;
  const inputTokens = Math.ceil(Buffer.byteLength(body) / opts.bytesPerToken);
  return (inputTokens * inputRate + Math.max(0, maxTokens) * p.output) / 1e6;
}

interface Parsed {
  model: string;
  maxTokens: number;
}

function parseRequest(text: string, countTokens: boolean): Parsed | string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return "the request body is not valid JSON";
  }
  if (!body || typeof body !== "object") return "the request body must be a JSON object";
  const { model, max_tokens } = body as { model?: unknown; max_tokens?: unknown };
  if (typeof model !== "string" || !model) return "model: Field required";
  if (countTokens) return { model, maxTokens: 0 };
  if (typeof max_tokens !== "number" || !Number.isInteger(max_tokens) || max_tokens < 1) {
    return "max_tokens: Field required (a positive integer)";
  }
  return { model, maxTokens: max_tokens };
}

export function modelHandler(deps: EgressDeps, countTokens: boolean) {
  const { config, ledger, metrics } = deps;
  return async (c: Context): Promise<Response> => {
    const started = performance.now();
    const url = new URL(c.req.url);
    const base = {
      kind: "model" as const,
      method: "POST",
      host: new URL(config.model.baseUrl).host,
      path: url.pathname,
    };
    const refuse = async (
      status: number,
      type: string,
      reason: string,
      message: string,
      attempt?: VerifiedAttempt,
      extra: Record<string, unknown> = {},
    ) => {
      await record(deps, { ...base, decision: "refused", reason, status, ...(attempt ? { attempt } : {}), ...extra });
      return apiError(status, type, `egress: ${message}`);
    };

    const verified = await verify(
      modelCredential((n) => c.req.header(n)),
      config.attemptKey,
    );
    if (!verified.ok) return refuse(401, "authentication_error", verified.reason, verified.message);
    const attempt = verified.attempt;
    const raw = await readLimited(c, config.model.bodyLimitBytes);
    if (!raw) return refuse(413, "request_too_large", "too_large", "the request body is too large", attempt);
    const text = raw.toString("utf8");
    const parsed = parseRequest(text, countTokens);
    if (typeof parsed === "string") return refuse(400, "invalid_request_error", "bad_request", parsed, attempt);

    let holdId: string | undefined;
    let holdUsd = 0;
    if (countTokens) {
      const current = await ledger.current(attempt);
      if ("refusal" in current) {
        return refuse(401, "authentication_error", current.refusal, "this attempt is not active", attempt);
      }
    } else {
      holdUsd = worstCaseUsd(parsed.model, text, parsed.maxTokens, {
        prices: config.prices,
        bytesPerToken: config.holdBytesPerToken,
      });
      const held = await ledger.hold(attempt, holdUsd);
      if (!held.ok) {
        if (held.reason !== BUDGET_EXHAUSTED) {
          return refuse(401, "authentication_error", held.reason, "this attempt is not active", attempt);
        }
        const run = held.run;
        const message = run
          ? `the run's budget is exhausted: $${run.spentUsd.toFixed(4)} spent of $${run.budgetUsd.toFixed(2)}; this request could cost up to $${holdUsd.toFixed(4)}`
          : "the run's budget is exhausted";
        return refuse(402, BUDGET_EXHAUSTED, BUDGET_EXHAUSTED, message, attempt, {
          spentUsd: run?.spentUsd,
          budgetUsd: run?.budgetUsd,
          holdUsd,
        });
      }
      holdId = held.holdId;
    }

    const auth: Record<string, string> =
      config.model.auth === "bearer"
        ? { authorization: `Bearer ${config.model.apiKey}` }
        : { "x-api-key": config.model.apiKey };
    const requestedTtl = /"ttl"\s*:\s*"1h"/.test(text) && !/"ttl"\s*:\s*"5m"/.test(text) ? "1h" : "5m";
    const settle = async (usage: WireUsage | undefined, model: string | undefined, error?: unknown) => {
      if (!holdId) return;
      const bill = billed(usage, requestedTtl);
      const priced = model ?? parsed.model;
      const usd = costUsd(priced, bill, config.prices);
      if (usd > holdUsd + 1e-12) metrics.holdShortfall.inc();
      // What was spent must be charged: a NATS hiccup (reconnect, leader change) is retried for a few
      // seconds before the charge is given up (and logged with its amount).
      for (let tries = 0; ; tries++) {
        try {
          await ledger.settle(attempt, holdId, { usd, tokens: tokensOf(bill) });
          break;
        } catch (err) {
          if (tries >= 4) {
            deps.logger.error(
              { event: "ledger_error", err: String(err), run: `${attempt.run.namespace}/${attempt.run.name}`, usd },
              "could not charge a model request",
            );
            break;
          }
          await new Promise((r) => setTimeout(r, 200 * 2 ** tries));
        }
      }
      const labels = { model: normalizeModel(priced), stage: attempt.stage };
      metrics.modelCost.inc(labels, usd);
      for (const [type, value] of [
        ["input", bill.input],
        ["output", bill.output],
        ["cache_read", bill.cacheRead],
        ["cache_write", bill.cacheWrite5m + bill.cacheWrite1h],
      ] as const) {
        if (value > 0) metrics.modelTokens.inc({ ...labels, type }, value);
      }
      return { usd, bill, error };
    };

    let upstream: Awaited<ReturnType<typeof request>>;
    try {
      upstream = await request(`${config.model.baseUrl}${url.pathname}${url.search}`, {
        method: "POST",
        headers: upstreamHeaders(c.req.raw.headers, { ...auth, "accept-encoding": "identity" }, ["accept-encoding"]),
        body: raw,
        dispatcher: deps.dispatcher,
        signal: c.req.raw.signal,
        headersTimeout: 600_000,
        bodyTimeout: 600_000,
      });
    } catch (err) {
      await settle(undefined, undefined, err);
      void record(deps, {
        ...base,
        decision: "allowed",
        reason: "upstream_error",
        status: 502,
        attempt,
        bytesUp: raw.length,
        error: String((err as Error).message),
      });
      return apiError(502, "api_error", "egress: the model API could not be reached");
    }

    const headers = downstreamHeaders(upstream.headers);
    const streaming = /text\/event-stream/i.test(headers.get("content-type") ?? "");
    const sse = streaming ? new SseUsageReader() : undefined;
    const json: Buffer[] = [];
    let jsonSize = 0;
    let bytesDown = 0;
    const upstreamStart = performance.now();
    return sendUpstream(
      c,
      upstream.statusCode,
      headers,
      upstream.body,
      (chunk) => {
        bytesDown += chunk.length;
        if (sse) sse.push(chunk);
        else if (jsonSize < 64 << 20) {
          json.push(chunk);
          jsonSize += chunk.length;
        }
      },
      async (error) => {
        let usage: WireUsage | undefined;
        let model: string | undefined;
        if (sse) {
          sse.end();
          usage = sse.usage;
          model = sse.model;
        } else {
          ({ usage, model } = jsonUsage(Buffer.concat(json).toString("utf8")));
        }
        const charged = await settle(usage, model, error);
        metrics.upstreamDuration.observe({ kind: "model" }, (performance.now() - upstreamStart) / 1000);
        void record(deps, {
          ...base,
          decision: "allowed",
          status: upstream.statusCode,
          attempt,
          model: model ?? parsed.model,
          stream: streaming,
          bytesUp: raw.length,
          bytesDown,
          ms: Math.round(performance.now() - started),
          ...(charged ? { costUsd: charged.usd, holdUsd } : {}),
          ...(error ? { error: String((error as Error)?.message ?? error) } : {}),
        });
      },
    );
  };
}

import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { type MessagesRequest, type Scenario, type ScriptedBlock, type ScriptedTurn, stageOf } from "./script.ts";
import { estimateTokens, PromptCache, type Usage } from "./tokens.ts";
import { ApiError, validateRequest } from "./validate.ts";

export interface InjectedFailure {
  status: 429 | 500 | 529;
  /** How many consecutive requests fail with this error. */
  times: number;
  /** Seconds, sent as `retry-after`. */
  retryAfter?: number;
  /** Only requests of this stage fail (default: any). */
  stage?: string;
}

export interface ModelSimOptions {
  scenario: Scenario;
  /** Consumed in order: the first `times` matching requests get the first failure, and so on. */
  failures?: InjectedFailure[];
  /** When set, `x-api-key` (or `Authorization: Bearer`) must equal it; otherwise any non-empty key passes. */
  apiKey?: string;
  /** Minimum cacheable prefix in tokens (Sonnet: 1024). */
  minCacheTokens?: number;
}

export type Provider = "anthropic" | "bedrock" | "vertex";

export interface RecordedRequest {
  /** Which wire dialect the request used (path shape). */
  provider: Provider;
  stage: string | undefined;
  turn: number;
  status: number;
  body: MessagesRequest;
  usage?: Usage;
  /** The error message when the request was refused. */
  error?: string;
}

export interface UsageTotals {
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  ephemeral_5m_input_tokens: number;
  ephemeral_1h_input_tokens: number;
}

export interface ModelSim {
  /** Base URL for ANTHROPIC_BASE_URL / `new Anthropic({ baseURL })`. */
  url: string;
  requests: RecordedRequest[];
  /** Sums over successful responses, optionally for one stage. */
  usageTotals(stage?: string): UsageTotals;
  stop(): Promise<void>;
}

const ERROR_TYPE = { 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error" } as const;
const ERROR_TEXT = {
  429: "Number of request tokens has exceeded your per-minute rate limit",
  500: "Internal server error",
  529: "Overloaded",
};

interface Route {
  provider: Provider;
  model?: string;
  stream: boolean;
  countTokens: boolean;
}

/**
 * The three wire dialects: Anthropic (`/v1/messages`), Bedrock (`/model/<id>/invoke`) and Vertex
 * (`.../publishers/anthropic/models/<id>:rawPredict`, under the `/v1` base).
 */
function routeOf(method: string, path: string): Route | undefined {
  if (method !== "POST") return undefined;
  if (path === "/v1/messages") return { provider: "anthropic", stream: false, countTokens: false };
  if (path === "/v1/messages/count_tokens") return { provider: "anthropic", stream: false, countTokens: true };
  const bedrock = /^\/model\/([^/]+)\/(invoke|invoke-with-response-stream)$/.exec(path);
  if (bedrock) {
    return {
      provider: "bedrock",
      model: decodeURIComponent(bedrock[1] ?? ""),
      stream: bedrock[2] !== "invoke",
      countTokens: false,
    };
  }
  const vertex =
    /\/projects\/[^/]+\/locations\/[^/]+\/publishers\/anthropic\/models\/([^/:]+):(rawPredict|streamRawPredict)$/.exec(
      path,
    );
  if (vertex) {
    const model = decodeURIComponent(vertex[1] ?? "");
    return {
      provider: "vertex",
      model,
      stream: vertex[2] === "streamRawPredict",
      countTokens: model === "count-tokens",
    };
  }
  return undefined;
}

const id = (prefix: string) =>
  `${prefix}_01${randomBytes(18)
    .toString("base64")
    .replace(/[^A-Za-z0-9]/g, "")
    .slice(0, 22)}`;

const simError = (message: string) => new ApiError(400, "invalid_request_error", `[model-sim] ${message}`);

/**
 * Starts a scripted Anthropic Messages API on 127.0.0.1. The stage comes from the system prompt's first
 * line (`AgentFactory stage: <stage>`), the turn from the number of assistant messages in the request, so a
 * retried or restarted runner replays deterministically.
 *
 * @example
 * const model = await startModelSim({ scenario: { triage: [turn(toolUse("Read", { file_path: "CLAUDE.md" })), turn(text("clear"))] } });
 * const client = new Anthropic({ apiKey: "test", baseURL: model.url });
 */
export async function startModelSim(opts: ModelSimOptions): Promise<ModelSim> {
  const cache = new PromptCache(opts.minCacheTokens ?? 1024);
  const failures = (opts.failures ?? []).map((f) => ({ ...f, left: f.times }));
  const requests: RecordedRequest[] = [];
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });

  function authenticate(req: IncomingMessage, provider: Provider) {
    const authz = req.headers.authorization ?? "";
    if (provider === "bedrock") {
      // SigV4-signed (or a Bedrock API key as Bearer); the signature itself is not checked.
      if (!/^(AWS4-HMAC-SHA256 Credential=|Bearer )/.test(authz)) {
        throw new ApiError(403, "permission_error", "Missing Authentication Token");
      }
      return;
    }
    if (provider === "vertex") {
      if (!/^Bearer \S+/.test(authz)) {
        throw new ApiError(401, "authentication_error", "Request is missing required authentication credential.");
      }
      return;
    }
    const bearer = /^Bearer\s+(\S+)$/i.exec(authz)?.[1];
    const key = (req.headers["x-api-key"] as string | undefined) ?? bearer;
    if (!key) throw new ApiError(401, "authentication_error", "x-api-key header is required");
    if (opts.apiKey !== undefined && key !== opts.apiKey)
      throw new ApiError(401, "authentication_error", "invalid x-api-key");
    if (!req.headers["anthropic-version"])
      throw new ApiError(400, "invalid_request_error", "anthropic-version: header is required");
  }

  function injectedFailure(stage: string | undefined): ApiError | undefined {
    const f = failures.find((x) => x.left > 0 && (x.stage === undefined || x.stage === stage));
    if (!f) return undefined;
    f.left--;
    const headers: Record<string, string> = f.retryAfter !== undefined ? { "retry-after": String(f.retryAfter) } : {};
    return new ApiError(f.status, ERROR_TYPE[f.status], ERROR_TEXT[f.status], headers);
  }

  /** Validates a scripted tool input; a schema Ajv cannot compile is not held against the script. */
  const validators = new Map<string, ValidateFunction | null>();
  let schemaErrors = "";
  function matchesSchema(schema: unknown, input: unknown): boolean {
    const { $schema: _, ...rest } = schema as Record<string, unknown>;
    const key = JSON.stringify(rest);
    if (!validators.has(key)) {
      try {
        validators.set(key, ajv.compile(rest));
      } catch {
        validators.set(key, null);
      }
    }
    const validate = validators.get(key);
    if (!validate || validate(input)) return true;
    schemaErrors = ajv.errorsText(validate.errors);
    return false;
  }

  /** Checks a scripted turn against what the request allows, as the real model would be constrained. */
  function checkTurn(body: MessagesRequest, scripted: ScriptedTurn, where: string) {
    const uses = scripted.content.filter(
      (b): b is Extract<ScriptedBlock, { type: "tool_use" }> => b.type === "tool_use",
    );
    const choice = body.tool_choice;
    if (choice?.type === "tool" && !uses.some((u) => u.name === choice.name)) {
      throw simError(`${where}: tool_choice forces tool '${choice.name}' but the scripted turn does not call it`);
    }
    if (choice?.type === "any" && uses.length === 0)
      throw simError(`${where}: tool_choice 'any' but the scripted turn calls no tool`);
    if (choice?.type === "none" && uses.length > 0)
      throw simError(`${where}: tool_choice 'none' but the scripted turn calls a tool`);
    for (const use of uses) {
      const tool = (body.tools ?? []).find((t) => t.name === use.name);
      if (!tool) throw simError(`${where}: scripted tool '${use.name}' is not among the request's tools`);
      if (tool.input_schema && !matchesSchema(tool.input_schema, use.input)) {
        throw simError(`${where}: scripted input for '${use.name}' does not match its input_schema: ${schemaErrors}`);
      }
    }
  }

  async function respond(body: MessagesRequest, stage: string, turnIndex: number) {
    const script = opts.scenario[stage];
    if (!script) throw simError(`no script for stage '${stage}' (have: ${Object.keys(opts.scenario).join(", ")})`);
    const entry = script[turnIndex];
    if (!entry) throw simError(`stage '${stage}' has ${script.length} scripted turns; turn ${turnIndex} was requested`);
    const scripted = typeof entry === "function" ? await entry(body, { stage, turn: turnIndex }) : entry;
    checkTurn(body, scripted, `${stage} turn ${turnIndex}`);
    let content: Record<string, unknown>[] = scripted.content.map((b) =>
      b.type === "text"
        ? { type: "text", text: b.text }
        : { type: "tool_use", id: b.id ?? id("toolu"), name: b.name, input: b.input },
    );
    let stopReason = scripted.stop_reason ?? (content.some((b) => b.type === "tool_use") ? "tool_use" : "end_turn");
    let outputTokens = estimateTokens(content);
    if (outputTokens > body.max_tokens) {
      // Cut like the API: text is truncated, calls that do not fit are dropped.
      const budget = body.max_tokens * 4;
      const kept: Record<string, unknown>[] = [];
      let used = 2;
      for (const b of content) {
        const size = JSON.stringify(b).length;
        if (used + size <= budget) {
          kept.push(b);
          used += size;
        } else if (b.type === "text") {
          const room = Math.max(budget - used - 30, 0);
          if (room > 0) kept.push({ type: "text", text: String(b.text).slice(0, room) });
          break;
        } else break;
      }
      content = kept;
      stopReason = "max_tokens";
      outputTokens = body.max_tokens;
    }
    const usage: Usage = { ...cache.account(body), output_tokens: outputTokens };
    const message = {
      id: id("msg"),
      type: "message",
      role: "assistant",
      model: body.model,
      content,
      stop_reason: stopReason,
      stop_sequence: null,
      usage,
    };
    return message;
  }

  function sendError(res: ServerResponse, err: ApiError, requestId: string) {
    res
      .writeHead(err.status, { "content-type": "application/json", "request-id": requestId, ...err.headers })
      .end(JSON.stringify({ type: "error", error: { type: err.type, message: err.message }, request_id: requestId }));
  }

  function sendStream(res: ServerResponse, message: Awaited<ReturnType<typeof respond>>, requestId: string) {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "request-id": requestId });
    const event = (type: string, data: Record<string, unknown>) =>
      res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    event("message_start", {
      message: { ...message, content: [], stop_reason: null, usage: { ...message.usage, output_tokens: 1 } },
    });
    event("ping", {});
    message.content.forEach((block, index) => {
      if (block.type === "text") {
        event("content_block_start", { index, content_block: { type: "text", text: "" } });
        const text = String(block.text);
        for (let at = 0; at < text.length; at += 64) {
          event("content_block_delta", { index, delta: { type: "text_delta", text: text.slice(at, at + 64) } });
        }
      } else {
        event("content_block_start", { index, content_block: { ...block, input: {} } });
        event("content_block_delta", {
          index,
          delta: { type: "input_json_delta", partial_json: JSON.stringify(block.input) },
        });
      }
      event("content_block_stop", { index });
    });
    event("message_delta", {
      delta: { stop_reason: message.stop_reason, stop_sequence: null },
      usage: { output_tokens: message.usage.output_tokens },
    });
    event("message_stop", {});
    res.end();
  }

  const server = createServer(async (req, res) => {
    const requestId = id("req");
    const url = new URL(req.url ?? "/", "http://sim");
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let record: RecordedRequest | undefined;
    try {
      const route = routeOf(req.method ?? "GET", url.pathname);
      if (!route) throw new ApiError(404, "not_found_error", `Not found: ${req.method} ${url.pathname}`);
      authenticate(req, route.provider);
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        throw new ApiError(400, "invalid_request_error", "Request body is not valid JSON");
      }
      if (route.provider !== "anthropic") {
        // Bedrock and Vertex take the model from the path and the API version from the body.
        const raw = parsed as Record<string, unknown> | null;
        if (!raw || typeof raw.anthropic_version !== "string") {
          throw new ApiError(400, "invalid_request_error", "anthropic_version: Field required");
        }
        if ("model" in raw && !route.countTokens) {
          throw new ApiError(400, "invalid_request_error", "model: Extra inputs are not permitted");
        }
        const { anthropic_version: _, ...rest } = raw;
        parsed = { model: route.model, ...rest, ...(route.stream ? { stream: true } : {}) };
      }
      if (route.countTokens) {
        const body = validateRequest({ max_tokens: 1, ...(parsed as object) });
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ input_tokens: PromptCache.count(body) }));
        return;
      }
      const body = parsed as MessagesRequest;
      const stage = stageOf(body?.system);
      const turnIndex = Array.isArray(body?.messages) ? body.messages.filter((m) => m?.role === "assistant").length : 0;
      record = { provider: route.provider, stage, turn: turnIndex, status: 0, body };
      requests.push(record);
      validateRequest(body);
      if (!stage) throw simError("the system prompt's first line must be 'AgentFactory stage: <stage>'");
      if (route.provider === "bedrock" && body.stream === true) {
        throw simError("Bedrock response streams (AWS event-stream) are not simulated; use messages.create");
      }
      const failure = injectedFailure(stage);
      if (failure) throw failure;
      const message = await respond(body, stage, turnIndex);
      record.status = 200;
      record.usage = message.usage;
      if (body.stream === true) sendStream(res, message, requestId);
      else
        res
          .writeHead(200, { "content-type": "application/json", "request-id": requestId })
          .end(JSON.stringify(message));
    } catch (err) {
      const apiErr =
        err instanceof ApiError ? err : new ApiError(500, "api_error", `[model-sim] ${(err as Error).message}`);
      if (record) {
        record.status = apiErr.status;
        record.error = apiErr.message;
      }
      sendError(res, apiErr, requestId);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    usageTotals(stage) {
      const totals: UsageTotals = {
        requests: 0,
        input_tokens: 0,
        output_tokens: 0,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        ephemeral_5m_input_tokens: 0,
        ephemeral_1h_input_tokens: 0,
      };
      for (const r of requests) {
        if (!r.usage || (stage !== undefined && r.stage !== stage)) continue;
        totals.requests++;
        totals.input_tokens += r.usage.input_tokens;
        totals.output_tokens += r.usage.output_tokens;
        totals.cache_creation_input_tokens += r.usage.cache_creation_input_tokens;
        totals.cache_read_input_tokens += r.usage.cache_read_input_tokens;
        totals.ephemeral_5m_input_tokens += r.usage.cache_creation.ephemeral_5m_input_tokens;
        totals.ephemeral_1h_input_tokens += r.usage.cache_creation.ephemeral_1h_input_tokens;
      }
      return totals;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

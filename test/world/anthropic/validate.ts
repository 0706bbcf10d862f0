import type { MessagesRequest } from "./script.ts";
import { countBreakpoints, segments } from "./tokens.ts";

export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "rate_limit_error"
  | "api_error"
  | "overloaded_error";

/** An error answered in the API's shape: `{ type: "error", error: { type, message } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const invalid = (message: string) => new ApiError(400, "invalid_request_error", message);

type Block = Record<string, unknown>;
const blocksOf = (content: unknown): Block[] =>
  typeof content === "string" ? [{ type: "text", text: content }] : Array.isArray(content) ? (content as Block[]) : [];

/**
 * The checks the real API makes that a runner bug would trip: required fields, alternating roles,
 * tool_use answered by tool_result in the next message (and only then), non-empty text, at most four
 * cache breakpoints, unique tool names, tool_choice naming a tool that exists.
 */
export function validateRequest(body: unknown): MessagesRequest {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw invalid("Request body must be a JSON object");
  const req = body as MessagesRequest;
  if (typeof req.model !== "string" || req.model === "") throw invalid("model: Field required");
  if (!Number.isInteger(req.max_tokens) || req.max_tokens < 1) throw invalid("max_tokens: Field required");
  if (
    req.temperature !== undefined &&
    (typeof req.temperature !== "number" || req.temperature < 0 || req.temperature > 1)
  ) {
    throw invalid("temperature: Input should be less than or equal to 1");
  }
  if (!Array.isArray(req.messages)) throw invalid("messages: Field required");
  if (req.messages.length === 0) throw invalid("messages: at least one message is required");
  if (req.system !== undefined && typeof req.system !== "string" && !Array.isArray(req.system)) {
    throw invalid("system: Input should be a valid string or list of text blocks");
  }
  for (const [i, s] of (Array.isArray(req.system) ? req.system : []).entries()) {
    if (s?.type !== "text" || typeof s.text !== "string") throw invalid(`system.${i}: Input should be a text block`);
    if (s.text === "") throw invalid(`system.${i}: text content blocks must be non-empty`);
  }

  const names = new Set<string>();
  for (const [i, tool] of (req.tools ?? []).entries()) {
    const name = tool.name;
    if (typeof name !== "string" || !/^[a-zA-Z0-9_-]{1,128}$/.test(name)) {
      throw invalid(`tools.${i}.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`);
    }
    if (tool.type === undefined || tool.type === "custom") {
      const schema = tool.input_schema as { type?: unknown } | undefined;
      if (schema?.type !== "object") throw invalid(`tools.${i}.input_schema: Field required`);
    }
    if (names.has(name)) throw invalid("tools: Tool names must be unique.");
    names.add(name);
  }
  const choice = req.tool_choice;
  if (choice !== undefined) {
    if (!["auto", "any", "tool", "none"].includes(choice.type)) throw invalid("tool_choice.type: Input tag is invalid");
    if (choice.type === "tool" && !names.has(String(choice.name))) {
      throw invalid(`tool_choice.name: Tool '${choice.name}' not found in tools`);
    }
    if ((choice.type === "any" || choice.type === "tool") && names.size === 0) {
      throw invalid("tool_choice: may only be specified while providing tools.");
    }
  }

  let prevRole = "";
  req.messages.forEach((m, i) => {
    if (m?.role !== "user" && m?.role !== "assistant")
      throw invalid(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    if (i === 0 && m.role !== "user") throw invalid('messages: first message must use the "user" role');
    if (m.role === prevRole) {
      throw invalid(
        `messages: roles must alternate between "user" and "assistant", but found multiple "${m.role}" roles in a row`,
      );
    }
    prevRole = m.role;
    if (typeof m.content !== "string" && !Array.isArray(m.content))
      throw invalid(`messages.${i}.content: Field required`);
    if (Array.isArray(m.content) && m.content.length === 0 && i !== req.messages.length - 1) {
      throw invalid(
        `messages.${i}: all messages must have non-empty content except for the optional final assistant message`,
      );
    }
    if (m.content === "" && !(m.role === "assistant" && i === req.messages.length - 1)) {
      throw invalid(
        `messages.${i}: all messages must have non-empty content except for the optional final assistant message`,
      );
    }
    blocksOf(m.content).forEach((b, j) => {
      if (b.type === "text" && (typeof b.text !== "string" || b.text === "") && Array.isArray(m.content)) {
        throw invalid(`messages.${i}.content.${j}.text: text content blocks must be non-empty`);
      }
      if (b.type === "tool_use" && m.role !== "assistant")
        throw invalid(`messages.${i}.content.${j}: tool_use blocks are only allowed in assistant messages`);
      if (b.type === "tool_result" && m.role !== "user")
        throw invalid(`messages.${i}.content.${j}: tool_result blocks are only allowed in user messages`);
    });

    // Pairing: each tool_use must be answered in the very next message; each tool_result must answer one.
    const prev = req.messages[i - 1];
    const asked = new Set(
      prev?.role === "assistant"
        ? blocksOf(prev.content)
            .filter((b) => b.type === "tool_use")
            .map((b) => String(b.id))
        : [],
    );
    blocksOf(m.content).forEach((b, j) => {
      if (b.type === "tool_result" && !asked.has(String(b.tool_use_id))) {
        throw invalid(
          `messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${b.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`,
        );
      }
    });
    if (m.role === "assistant") {
      const ids = blocksOf(m.content)
        .filter((b) => b.type === "tool_use")
        .map((b) => String(b.id));
      const next = req.messages[i + 1];
      const answered = new Set(
        blocksOf(next?.content)
          .filter((b) => b.type === "tool_result")
          .map((b) => String(b.tool_use_id)),
      );
      const missing = ids.filter((id) => !answered.has(id));
      if (missing.length > 0) {
        throw invalid(
          `messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(", ")}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`,
        );
      }
    }
  });

  const breakpoints = countBreakpoints(req);
  if (breakpoints > 4) throw invalid(`A maximum of 4 blocks with cache_control may be provided. Found ${breakpoints}.`);
  let seen5m = false;
  for (const s of segments(req)) {
    if (s.ttl === "5m") seen5m = true;
    if (s.ttl === "1h" && seen5m) {
      throw invalid("a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block");
    }
  }
  return req;
}

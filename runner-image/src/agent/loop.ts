import fs from "node:fs";
import type {
  ContentBlock,
  ContentBlockParam,
  Message,
  MessageCreateParamsNonStreaming,
  MessageParam,
  ToolResultBlockParam,
  ToolUseBlock,
} from "@anthropic-ai/sdk/resources/messages";
import type { z } from "zod";
import { addBilled, type BilledUsage, costUsd, type PriceTable, priceFor, zeroBilled } from "../../../core/pricing.ts";
import type { HookEngine } from "../hooks/engine.ts";
import type { Redactor } from "../hooks/redact.ts";
import { toolParam } from "../tools/index.ts";
import { type Tool, type ToolContext, ToolError } from "../tools/types.ts";
import type { ModelClient } from "./client.ts";
import { isBudgetExhausted, ModelUnavailableError, type RetryOptions, withRetry } from "./retry.ts";
import { billedUsage } from "./usage.ts";

/** A tool whose call ends the loop with a validated, structured result (a triage verdict, review findings). */
export interface FinalTool<S extends z.ZodType> {
  name: string;
  description: string;
  schema: S;
}

export interface LoopOptions<S extends z.ZodType = z.ZodType> {
  client: ModelClient;
  model: string;
  /** Starts with `AgentFactory stage: <stage>`. */
  system: string;
  tools: Tool[];
  toolContext: ToolContext;
  hooks: HookEngine;
  redact: Redactor;
  prompt: string;
  maxTurns: number;
  budgetUsd: number;
  maxTokens: number;
  cacheTtl?: "5m" | "1h";
  /** Cache breakpoints on the system prompt and the growing conversation (default on). */
  caching?: boolean;
  prices?: PriceTable;
  retry: RetryOptions;
  /** After this many blocked stops the loop fails with the last block's message. */
  maxStopBlocks: number;
  finalTool?: FinalTool<S>;
  transcriptPath?: string;
  log?: (msg: string, data?: Record<string, unknown>) => void;
}

export type LoopStatus = "completed" | "turn_cap" | "budget_cap" | "stop_blocked" | "model_error" | "hook_stop";

export interface LoopResult<T = unknown> {
  status: LoopStatus;
  message: string;
  turns: number;
  usage: BilledUsage;
  costUsd: number;
  final?: T;
  /** The last text the model wrote. */
  text: string;
  toolCalls: number;
  messages: MessageParam[];
  /** The model gateway refused for budget (HTTP 402 budget_exhausted): the run's budget is spent. */
  budgetRefused?: boolean;
}

/**
 * The agent loop: asks the model, runs the tools it calls through the hooks, and repeats until the
 * model finishes (and the Stop gates agree), the structured final tool is called, or a cap is hit.
 */
export async function runLoop<S extends z.ZodType>(opts: LoopOptions<S>): Promise<LoopResult<z.infer<S>>> {
  const log = opts.log ?? (() => {});
  const caching = opts.caching ?? true;
  const ttl = opts.cacheTtl ?? "5m";
  const cache = caching ? { cache_control: { type: "ephemeral" as const, ...(ttl === "1h" ? { ttl } : {}) } } : {};
  const toolsByName = new Map(opts.tools.map((t) => [t.name, t]));
  const toolParams = [...opts.tools.map(toolParam), ...(opts.finalTool ? [toolParam(opts.finalTool)] : [])];

  const state = {
    turns: 0,
    usage: zeroBilled(),
    cost: 0,
    text: "",
    toolCalls: 0,
    stopBlocks: 0,
    forceFinal: false,
    final: undefined as z.infer<S> | undefined,
  };
  const done = (status: LoopStatus, message: string): LoopResult<z.infer<S>> => ({
    status,
    message,
    turns: state.turns,
    usage: state.usage,
    costUsd: state.cost,
    final: state.final,
    text: state.text,
    toolCalls: state.toolCalls,
    messages,
  });

  const start = await opts.hooks.run("SessionStart", { source: "startup" });
  Object.assign(opts.toolContext.env, start.env);
  const intro = start.context.length ? `\n\n<session-context>\n${start.context.join("\n")}\n</session-context>` : "";
  // The prompt carries the ticket, replies and repository files: text that leaves the pod for the model
  // API, redacted like tool output (intro is hook output, redacted by the hook engine).
  const messages: MessageParam[] = [
    { role: "user", content: [{ type: "text", text: opts.redact(opts.prompt) + intro }] },
  ];
  transcript(opts.transcriptPath, { type: "user", message: messages[0] });

  while (true) {
    if (state.turns >= opts.maxTurns) return done("turn_cap", `turn cap reached (${opts.maxTurns} turns)`);
    const remaining = opts.budgetUsd - state.cost;
    const outputPrice = priceFor(opts.model, opts.prices).output / 1e6;
    const affordable = Math.floor(remaining / outputPrice);
    if (remaining <= 0 || affordable < 64)
      return done("budget_cap", `budget cap reached ($${state.cost.toFixed(4)} of $${opts.budgetUsd.toFixed(2)})`);
    const lastTurn = state.turns === opts.maxTurns - 1;
    const forceFinal = !!opts.finalTool && (state.forceFinal || lastTurn);

    const params: MessageCreateParamsNonStreaming = {
      model: opts.model,
      max_tokens: Math.min(opts.maxTokens, affordable),
      system: [{ type: "text", text: opts.system, ...cache }],
      tools: toolParams,
      messages: caching ? withBreakpoints(messages, cache) : messages,
      ...(forceFinal && opts.finalTool ? { tool_choice: { type: "tool", name: opts.finalTool.name } } : {}),
    };
    let response: Message;
    try {
      response = await withRetry(() => opts.client.create(params), {
        ...opts.retry,
        onRetry: (info) => log("model API retry", info),
      });
    } catch (err) {
      if (isBudgetExhausted(err)) {
        const r = done("budget_cap", "budget exhausted: the model gateway refused the request (HTTP 402)");
        return { ...r, budgetRefused: true };
      }
      const message = err instanceof ModelUnavailableError ? err.message : `model API error: ${(err as Error).message}`;
      return done("model_error", opts.redact(message));
    }
    state.turns++;
    const turnUsage = billedUsage(response.usage, ttl);
    const turnCost = costUsd(opts.model, turnUsage, opts.prices);
    state.usage = addBilled(state.usage, turnUsage);
    state.cost += turnCost;
    const content = response.content.map(toParam);
    if (!content.length) content.push({ type: "text", text: "(no content)" });
    messages.push({ role: "assistant", content });
    transcript(opts.transcriptPath, {
      type: "assistant",
      message: { model: opts.model, usage: response.usage, content },
    });
    const text = response.content
      .flatMap((b) => (b.type === "text" ? [b.text] : []))
      .join("\n")
      .trim();
    if (text) state.text = text;
    const uses = response.content.filter((b): b is ToolUseBlock => b.type === "tool_use");
    log("turn", {
      turn: state.turns,
      stop: response.stop_reason,
      tools: uses.map((u) => u.name),
      usage: turnUsage,
      costUsd: turnCost,
    });

    if (uses.length) {
      const results: ToolResultBlockParam[] = [];
      for (const use of uses) {
        state.toolCalls++;
        if (opts.finalTool && use.name === opts.finalTool.name) {
          const parsed = opts.finalTool.schema.safeParse(use.input);
          if (parsed.success) {
            state.final = parsed.data;
            results.push({ type: "tool_result", tool_use_id: use.id, content: "Recorded." });
          } else {
            const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
            results.push({
              type: "tool_result",
              tool_use_id: use.id,
              is_error: true,
              content: `Invalid input: ${issues}. Call ${use.name} again.`,
            });
          }
          continue;
        }
        const { result, stop } = await runTool(use, toolsByName.get(use.name), opts);
        results.push(result);
        if (stop) return done("hook_stop", stop);
      }
      messages.push({ role: "user", content: results });
      transcript(opts.transcriptPath, { type: "user", message: { role: "user", content: results } });
      if (state.final === undefined) continue;
    } else if (response.stop_reason === "refusal") {
      return done("model_error", "the model refused to continue");
    } else if (response.stop_reason === "max_tokens") {
      pushUser(messages, "Your reply was cut off at the token limit. Continue, more briefly.");
      continue;
    } else if (opts.finalTool && state.final === undefined) {
      state.forceFinal = true;
      pushUser(messages, `Report your result now by calling the ${opts.finalTool.name} tool.`);
      continue;
    }

    const stop = await opts.hooks.run("Stop", { stop_hook_active: state.stopBlocks > 0 });
    if (stop.stop) return done("hook_stop", stop.stop);
    if (!stop.blocked) return done("completed", state.text || "done");
    state.stopBlocks++;
    const feedback = stop.feedback.join("\n\n");
    log("stop blocked", { by: stop.by, count: state.stopBlocks });
    if (state.stopBlocks >= opts.maxStopBlocks)
      return done("stop_blocked", `could not finish after ${state.stopBlocks} blocked stops: ${feedback}`);
    state.final = undefined;
    pushUser(messages, `You cannot finish yet.\n\n${feedback}`);
  }
}

async function runTool(
  use: ToolUseBlock,
  tool: Tool | undefined,
  opts: LoopOptions<z.ZodType>,
): Promise<{ result: ToolResultBlockParam; stop?: string }> {
  const error = (content: string): { result: ToolResultBlockParam } => ({
    result: { type: "tool_result", tool_use_id: use.id, is_error: true, content: opts.redact(content) },
  });
  if (!tool) return error(`Unknown tool ${use.name}. Available: ${opts.tools.map((t) => t.name).join(", ")}.`);
  const parsed = tool.schema.safeParse(use.input);
  if (!parsed.success)
    return error(
      `Invalid input for ${use.name}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  const pre = await opts.hooks.run("PreToolUse", { tool_name: use.name, tool_input: use.input, tool_use_id: use.id });
  if (pre.stop) return { ...error(pre.stop), stop: pre.stop };
  if (pre.blocked) return error(pre.feedback.join("\n"));
  let input = parsed.data;
  if (pre.updatedInput) {
    // A repository hook rewrote the input: the hard gates judge the rewritten call too.
    const rewritten = tool.schema.safeParse(pre.updatedInput);
    if (!rewritten.success) return error(`A hook rewrote the ${use.name} input into an invalid one.`);
    const again = await opts.hooks.run(
      "PreToolUse",
      { tool_name: use.name, tool_input: rewritten.data, tool_use_id: use.id },
      { gatesOnly: true },
    );
    if (again.blocked) return error(again.feedback.join("\n"));
    input = rewritten.data;
  }
  let output: { content: string; isError?: boolean };
  try {
    output = await tool.run(input, opts.toolContext);
  } catch (err) {
    output = {
      content: err instanceof ToolError ? err.message : `${use.name} failed: ${(err as Error).message}`,
      isError: true,
    };
  }
  let content = opts.redact(output.content);
  const post = await opts.hooks.run("PostToolUse", {
    tool_name: use.name,
    tool_input: use.input,
    tool_use_id: use.id,
    tool_response: { content, is_error: !!output.isError },
  });
  const notes = [...post.feedback, ...post.context];
  if (notes.length) content += `\n\n<hook-feedback>\n${notes.join("\n")}\n</hook-feedback>`;
  return {
    result: { type: "tool_result", tool_use_id: use.id, content, ...(output.isError ? { is_error: true } : {}) },
    stop: post.stop,
  };
}

/** Copies the conversation with cache breakpoints on the last two user turns (the growing prefix). */
function withBreakpoints(messages: MessageParam[], cache: object): MessageParam[] {
  const userIdx = messages.flatMap((m, i) => (m.role === "user" ? [i] : [])).slice(-2);
  return messages.map((m, i) => {
    if (!userIdx.includes(i)) return m;
    const blocks: ContentBlockParam[] =
      typeof m.content === "string" ? [{ type: "text", text: m.content }] : [...m.content];
    const last = blocks.length - 1;
    blocks[last] = { ...(blocks[last] as ContentBlockParam), ...cache } as ContentBlockParam;
    return { ...m, content: blocks } as MessageParam;
  });
}

/** Adds user text, merged into the last message when that is already the user's (roles must alternate). */
function pushUser(messages: MessageParam[], text: string): void {
  const last = messages[messages.length - 1];
  if (last?.role === "user") {
    const blocks: ContentBlockParam[] =
      typeof last.content === "string" ? [{ type: "text", text: last.content }] : [...last.content];
    blocks.push({ type: "text", text });
    last.content = blocks;
  } else messages.push({ role: "user", content: [{ type: "text", text }] });
}

function toParam(block: ContentBlock): ContentBlockParam {
  if (block.type === "text") return { type: "text", text: block.text };
  if (block.type === "tool_use") return { type: "tool_use", id: block.id, name: block.name, input: block.input };
  return block as unknown as ContentBlockParam;
}

function transcript(file: string | undefined, entry: unknown): void {
  if (file) fs.appendFileSync(file, `${JSON.stringify(entry)}\n`);
}

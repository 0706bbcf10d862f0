/** A scripted conversation: per stage, the assistant turns in order. */

export type ScriptedBlock =
  | { type: "text"; text: string }
  | { type: "tool_use"; name: string; input: Record<string, unknown>; id?: string };

export type StopReason = "end_turn" | "tool_use" | "max_tokens" | "stop_sequence" | "pause_turn" | "refusal";

export interface ScriptedTurn {
  content: ScriptedBlock[];
  /** Default: "tool_use" when the turn calls a tool, else "end_turn". */
  stop_reason?: StopReason;
}

/** The request as the server received it (JSON body). */
export type MessagesRequest = Record<string, unknown> & {
  model: string;
  max_tokens: number;
  messages: { role: "user" | "assistant"; content: string | Record<string, unknown>[] }[];
  system?: string | { type: "text"; text: string; cache_control?: unknown }[];
  tools?: Record<string, unknown>[];
  tool_choice?: { type: "auto" | "any" | "tool" | "none"; name?: string };
};

/** A turn, or a function computing it from the request (dynamic scripts: read tool results, branch). */
export type TurnScript =
  | ScriptedTurn
  | ((request: MessagesRequest, at: { stage: string; turn: number }) => ScriptedTurn | Promise<ScriptedTurn>);

/** `{ triage: [turn(...), ...], write: [...] }`: keyed by the stage named in the system prompt's first line. */
export type Scenario = Record<string, TurnScript[]>;

export const text = (s: string): ScriptedBlock => ({ type: "text", text: s });

export const toolUse = (name: string, input: Record<string, unknown>): ScriptedBlock => ({
  type: "tool_use",
  name,
  input,
});

/** @example turn(text("Reading the ticket."), toolUse("Read", { file_path: "README.md" })) */
export const turn = (...content: ScriptedBlock[]): ScriptedTurn => ({ content });

const STAGE_LINE = /^AgentFactory stage: ([\w.-]+)/;

/** The stage named by the system prompt's first line (`AgentFactory stage: <stage>`), if any. */
export function stageOf(system: MessagesRequest["system"]): string | undefined {
  const first = typeof system === "string" ? system : Array.isArray(system) ? system[0]?.text : undefined;
  return first ? STAGE_LINE.exec(first)?.[1] : undefined;
}

/** The tool_result blocks of the request's last user message, by tool name (for dynamic scripts). */
export function lastToolResults(request: MessagesRequest): { name: string; content: string; is_error: boolean }[] {
  const msgs = request.messages;
  const last = msgs[msgs.length - 1];
  const prev = msgs[msgs.length - 2];
  if (last?.role !== "user" || !Array.isArray(last.content) || !prev || !Array.isArray(prev.content)) return [];
  const names = new Map(prev.content.filter((b) => b.type === "tool_use").map((b) => [b.id, String(b.name)]));
  return last.content
    .filter((b) => b.type === "tool_result")
    .map((b) => ({
      name: names.get(b.tool_use_id) ?? "",
      content:
        typeof b.content === "string"
          ? b.content
          : Array.isArray(b.content)
            ? b.content.map((c: { text?: string }) => c.text ?? "").join("")
            : "",
      is_error: b.is_error === true,
    }));
}

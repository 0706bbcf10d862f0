import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Language, type Node, Parser } from "web-tree-sitter";

/**
 * The shell reader behind the safety gate: tree-sitter's Bash grammar (the parser editors and code
 * hosts use), reduced to what the gate judges — every simple command anywhere in the line (command
 * substitutions, subshells, loops and function bodies included), grouped by pipeline, with each word
 * evaluated only as far as it can be without running anything.
 */

/**
 * One word of a command. `literal`: plain text and quotes, value exact. `escaped`: `$'…'` ANSI-C text,
 * decoded (exact, but not a plain literal). `dynamic`: it expands at run time (`$x`, `$(…)`, globs of
 * braces); value is the source text, so it keeps its `$`.
 */
export interface Word {
  value: string;
  kind: "literal" | "escaped" | "dynamic";
}

export interface SimpleCommand {
  /** The command word and its arguments, after the leading assignments. */
  words: Word[];
  assignments: { name: string; value: Word }[];
  redirects: { op: string; target: Word }[];
  /** Text fed on standard input by a heredoc or a here-string. */
  stdin?: Word;
}

export interface ParsedShell {
  /** Every pipeline in source order, nested ones included; a lone command is a pipeline of one. */
  pipelines: SimpleCommand[][];
  /** Source text of every parameter expansion (`$X`, `${X…}`). */
  expansions: string[];
  /** The grammar could not read the line: the gate fails closed on it. */
  error: boolean;
}

let parser: Promise<Parser> | undefined;

/** Next to the bundle in the image (build.sh copies the .wasm files), else from node_modules. */
function wasm(file: string, specifier: string): string {
  const sibling = fileURLToPath(new URL(`./${file}`, import.meta.url));
  return existsSync(sibling) ? sibling : createRequire(import.meta.url).resolve(specifier);
}

function load(): Promise<Parser> {
  parser ??= (async () => {
    const runtime = wasm("web-tree-sitter.wasm", "web-tree-sitter/web-tree-sitter.wasm");
    await Parser.init({ locateFile: () => runtime });
    const bash = await Language.load(wasm("tree-sitter-bash.wasm", "tree-sitter-bash/tree-sitter-bash.wasm"));
    const p = new Parser();
    p.setLanguage(bash);
    return p;
  })();
  return parser;
}

export async function parseShell(source: string): Promise<ParsedShell> {
  const tree = (await load()).parse(source);
  if (!tree) return { pipelines: [], expansions: [], error: true };
  try {
    const out: ParsedShell = { pipelines: [], expansions: [], error: tree.rootNode.hasError };
    visit(tree.rootNode, out);
    return out;
  } finally {
    tree.delete();
  }
}

const EXPANSIONS = new Set(["simple_expansion", "expansion"]);

function visit(node: Node, out: ParsedShell): void {
  if (EXPANSIONS.has(node.type)) out.expansions.push(node.text);
  switch (node.type) {
    case "pipeline": {
      const at = out.pipelines.length;
      out.pipelines.push([]);
      const stages = out.pipelines[at] as SimpleCommand[];
      for (const stage of node.namedChildren) if (stage) stageOf(stage, stages, out);
      return;
    }
    case "command":
    case "declaration_command":
    case "redirected_statement": {
      const stages: SimpleCommand[] = [];
      out.pipelines.push(stages);
      stageOf(node, stages, out);
      return;
    }
    default:
      for (const child of node.namedChildren) if (child) visit(child, out);
  }
}

/** Adds one pipeline stage (and, for tree-sitter's heredoc quirk, the stages that follow it). */
function stageOf(node: Node, stages: SimpleCommand[], out: ParsedShell): void {
  if (node.type === "command" || node.type === "declaration_command") {
    stages.push(simple(node, [], out));
    return;
  }
  if (node.type === "redirected_statement") {
    const body = node.childForFieldName("body");
    const redirects = node.namedChildren.filter((c): c is Node => !!c && c.id !== body?.id);
    if (body && (body.type === "command" || body.type === "declaration_command"))
      stages.push(simple(body, redirects, out));
    else {
      stages.push({ words: [], assignments: [], redirects: redirectsOf(redirects, out) });
      if (body) visit(body, out);
    }
    // `cat <<EOF | sh`: the grammar hangs the rest of the pipeline (or list) inside the heredoc node.
    for (const r of redirects)
      for (const c of r.namedChildren) {
        if (!c) continue;
        if (c.type === "pipeline") for (const s of c.namedChildren) s && stageOf(s, stages, out);
        else if (!/^heredoc_(start|body|end)$/.test(c.type)) visit(c, out);
      }
    return;
  }
  // A subshell, group or loop as a stage: opaque here, its own commands are visited.
  stages.push({ words: [], assignments: [], redirects: [] });
  visit(node, out);
}

function simple(node: Node, extra: Node[], out: ParsedShell): SimpleCommand {
  const cmd: SimpleCommand = { words: [], assignments: [], redirects: [] };
  const redirectNodes: Node[] = [...extra];
  const declaration = node.type === "declaration_command";
  if (declaration) {
    const keyword = node.children.find((c) => c && !c.isNamed);
    if (keyword) cmd.words.push({ value: keyword.type, kind: "literal" });
  }
  for (const child of node.namedChildren) {
    if (!child) continue;
    if (child.type === "variable_assignment") {
      const name = child.childForFieldName("name")?.text ?? "";
      const node = child.childForFieldName("value");
      const value = node ? wordOf(node, out) : { value: "", kind: "literal" as const };
      // `export A=1` declares (an argument of export); `A=1 cmd` sets the command's environment.
      if (declaration) cmd.words.push({ value: `${name}=${value.value}`, kind: value.kind });
      else cmd.assignments.push({ name, value });
    } else if (/_redirect$/.test(child.type)) redirectNodes.push(child);
    else if (child.type === "command_name") {
      const inner = child.namedChildren[0];
      if (inner) cmd.words.push(wordOf(inner, out));
    } else cmd.words.push(wordOf(child, out));
  }
  cmd.redirects = redirectsOf(redirectNodes, out, cmd);
  return cmd;
}

function redirectsOf(nodes: Node[], out: ParsedShell, cmd?: SimpleCommand): SimpleCommand["redirects"] {
  const redirects: SimpleCommand["redirects"] = [];
  for (const r of nodes) {
    if (r.type === "heredoc_redirect") {
      const start = r.namedChildren.find((c) => c?.type === "heredoc_start");
      const body = r.namedChildren.find((c) => c?.type === "heredoc_body");
      const quoted = /['"\\]/.test(start?.text ?? "");
      if (body) {
        const dynamic = !quoted && body.namedChildren.some((c) => c && c.type !== "heredoc_content");
        if (!quoted) for (const c of body.namedChildren) if (c && c.type !== "heredoc_content") visit(c, out);
        if (cmd) cmd.stdin = { value: body.text, kind: dynamic ? "dynamic" : "literal" };
      }
      continue;
    }
    const op = r.children.find((c) => c && !c.isNamed)?.type ?? "";
    const parts = r.namedChildren.filter((c): c is Node => !!c && c.type !== "file_descriptor");
    const target = parts.at(0);
    if (r.type === "herestring_redirect") {
      if (cmd && target) cmd.stdin = wordOf(target, out);
      continue;
    }
    if (target) redirects.push({ op, target: wordOf(target, out) });
  }
  return redirects;
}

const worst = (a: Word["kind"], b: Word["kind"]): Word["kind"] =>
  a === "dynamic" || b === "dynamic" ? "dynamic" : a === "escaped" || b === "escaped" ? "escaped" : "literal";

/** Evaluates a word as far as it can be without running anything; visits nested commands. */
function wordOf(node: Node, out: ParsedShell): Word {
  switch (node.type) {
    case "word":
      return { value: node.text.replace(/\\(.)/gs, "$1").replace(/\\\n/g, ""), kind: "literal" };
    case "number":
    case "variable_name":
      return { value: node.text, kind: "literal" };
    case "raw_string":
      return { value: node.text.slice(1, -1), kind: "literal" };
    case "ansi_c_string":
      return { value: decodeAnsiC(node.text.slice(2, -1)), kind: "escaped" };
    case "string":
    case "translated_string": {
      let value = "";
      let kind: Word["kind"] = "literal";
      for (const c of node.namedChildren) {
        if (!c) continue;
        if (c.type === "string_content") value += c.text.replace(/\\([$`"\\\n])/g, "$1");
        else {
          kind = "dynamic";
          value += c.text;
          visitExpansion(c, out);
        }
      }
      return { value, kind };
    }
    case "concatenation": {
      let value = "";
      let kind: Word["kind"] = "literal";
      for (const c of node.namedChildren) {
        if (!c) continue;
        const w = wordOf(c, out);
        value += w.value;
        kind = worst(kind, w.kind);
      }
      return { value, kind };
    }
    default:
      visitExpansion(node, out);
      return { value: node.text, kind: "dynamic" };
  }
}

function visitExpansion(node: Node, out: ParsedShell): void {
  if (EXPANSIONS.has(node.type)) out.expansions.push(node.text);
  for (const child of node.namedChildren) if (child) visit(child, out);
}

const C_ESCAPES: Record<string, string> = {
  a: "\x07",
  b: "\b",
  e: "\x1b",
  E: "\x1b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\\": "\\",
  "'": "'",
  '"': '"',
  "?": "?",
};

/** Bash's `$'…'` escapes: \n, \xHH, \uHHHH, \NNN (octal), \cX. */
function decodeAnsiC(s: string): string {
  return s.replace(/\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)/gs, (_, e: string) => {
    if (/^[xuU]/.test(e)) return String.fromCodePoint(Number.parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(Number.parseInt(e, 8));
    if (e.startsWith("c")) return String.fromCharCode((e.charCodeAt(1) ?? 64) & 31);
    return C_ESCAPES[e] ?? `\\${e}`;
  });
}

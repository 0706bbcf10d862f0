/**
 * A small POSIX-shell lexer for the safety gate: enough to see which commands a line runs, with
 * quotes removed and command substitutions pulled out for separate analysis. It does not execute or
 * expand anything; unknown constructs fall through as plain words, and the gate also checks the raw text.
 */
export interface SimpleCommand {
  argv: string[];
  redirects: { op: string; target: string }[];
}

export interface ParsedLine {
  /** Pipelines in order; each is the list of simple commands joined by `|`. */
  pipelines: SimpleCommand[][];
  /** Bodies of `$(…)`, backticks and `<(…)`/`>(…)`, to be analysed as commands of their own. */
  nested: string[];
  /** Heredoc bodies, in order. */
  heredocs: string[];
}

const BREAKS = new Set([";", "\n", "&", "(", ")", "{", "}"]);

export function parseShell(source: string): ParsedLine {
  const { text, bodies } = stripHeredocs(source);
  const pipelines: SimpleCommand[][] = [];
  const nested: string[] = [];
  let pipeline: SimpleCommand[] = [];
  let cmd: SimpleCommand = { argv: [], redirects: [] };
  let word: string | null = null;
  let pendingRedirect: string | null = null;
  let i = 0;

  const endWord = () => {
    if (word === null) return;
    if (pendingRedirect !== null) {
      cmd.redirects.push({ op: pendingRedirect, target: word });
      pendingRedirect = null;
    } else cmd.argv.push(word);
    word = null;
  };
  const endCommand = () => {
    endWord();
    if (cmd.argv.length || cmd.redirects.length) pipeline.push(cmd);
    cmd = { argv: [], redirects: [] };
  };
  const endPipeline = () => {
    endCommand();
    if (pipeline.length) pipelines.push(pipeline);
    pipeline = [];
  };
  const append = (s: string) => {
    word = (word ?? "") + s;
  };
  /** Reads a balanced `(…)` starting after the opening paren; returns the body and the index after `)`. */
  const balanced = (from: number): [string, number] => {
    let depth = 1;
    let j = from;
    let quote: string | null = null;
    for (; j < text.length; j++) {
      const c = text[j];
      if (quote) {
        if (c === "\\" && quote === '"') j++;
        else if (c === quote) quote = null;
        continue;
      }
      if (c === "'" || c === '"') quote = c;
      else if (c === "\\") j++;
      else if (c === "(") depth++;
      else if (c === ")" && --depth === 0) break;
    }
    return [text.slice(from, j), j + 1];
  };

  while (i < text.length) {
    const c = text[i] as string;
    const next = text[i + 1];
    if (c === "\\") {
      if (next === "\n") i += 2;
      else {
        append(next ?? "");
        i += 2;
      }
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      const stop = end < 0 ? text.length : end;
      append(text.slice(i + 1, stop));
      i = stop + 1;
    } else if (c === '"') {
      let j = i + 1;
      let s = "";
      while (j < text.length && text[j] !== '"') {
        if (text[j] === "\\" && j + 1 < text.length) {
          s += text[j + 1];
          j += 2;
        } else if (text[j] === "$" && text[j + 1] === "(") {
          const [body, after] = balanced(j + 2);
          nested.push(body);
          s += "$(…)";
          j = after;
        } else if (text[j] === "`") {
          const end = text.indexOf("`", j + 1);
          const stop = end < 0 ? text.length : end;
          nested.push(text.slice(j + 1, stop));
          s += "$(…)";
          j = stop + 1;
        } else s += text[j++];
      }
      append(s);
      i = j + 1;
    } else if (c === "$" && next === "(") {
      const [body, after] = balanced(i + 2);
      nested.push(body.startsWith("(") ? body.slice(1, -1) : body);
      append("$(…)");
      i = after;
    } else if (c === "`") {
      const end = text.indexOf("`", i + 1);
      const stop = end < 0 ? text.length : end;
      nested.push(text.slice(i + 1, stop));
      append("$(…)");
      i = stop + 1;
    } else if ((c === "<" || c === ">") && next === "(") {
      const [body, after] = balanced(i + 2);
      nested.push(body);
      endWord();
      cmd.argv.push(`${c}(…)`);
      i = after;
    } else if (c === "#" && word === null) {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === " " || c === "\t") {
      endWord();
      i++;
    } else if (c === "|") {
      if (next === "|") {
        endPipeline();
        i += 2;
      } else {
        endCommand();
        i += next === "&" ? 2 : 1;
      }
    } else if (c === "&" && next === "&") {
      endPipeline();
      i += 2;
    } else if (c === ">" || c === "<" || (c === "&" && next === ">")) {
      if (word !== null && /^\d+$/.test(word)) word = null; // fd number, as in 2>
      endWord();
      let op = "";
      while (i < text.length && /[<>&|]/.test(text[i] as string) && op.length < 3) op += text[i++];
      if (/^[<>]&$|^>&$/.test(op) && /\d|-/.test(text[i] ?? "")) {
        while (i < text.length && /[\d-]/.test(text[i] as string)) i++; // 2>&1
        continue;
      }
      pendingRedirect = op;
    } else if (BREAKS.has(c)) {
      endPipeline();
      i++;
    } else {
      append(c);
      i++;
    }
  }
  endPipeline();
  return { pipelines, nested, heredocs: bodies };
}

/**
 * Takes heredoc bodies out of the text (they are data, not commands), leaving `<<WORD` in place.
 * Returns the bodies so a caller can analyse those fed to a shell (`bash <<EOF`).
 */
export function stripHeredocs(text: string): { text: string; bodies: string[] } {
  const bodies: string[] = [];
  const lines = text.split("\n");
  const out: string[] = [];
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n] as string;
    out.push(line);
    const delimiters = [...line.matchAll(/<<-?\s*(['"]?)([A-Za-z0-9_]+)\1/g)].map((m) => m[2] as string);
    for (const delimiter of delimiters) {
      const body: string[] = [];
      while (++n < lines.length && (lines[n] as string).trim() !== delimiter) body.push(lines[n] as string);
      bodies.push(body.join("\n"));
    }
  }
  return { text: out.join("\n"), bodies };
}

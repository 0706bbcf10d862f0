/**
 * A small GraphQL executor for the few fields the product uses (no schema library here): parses
 * operations with variables, aliases, arguments and nested selections, and resolves them against
 * plain resolver objects. Fragments are not supported (nothing we call sends them).
 */

type Value = string | number | boolean | null | Value[] | { [k: string]: Value } | { $var: string };

export interface Field {
  alias?: string;
  name: string;
  args: Record<string, Value>;
  selections: Field[];
}

export interface Operation {
  kind: "query" | "mutation";
  selections: Field[];
}

const TOKEN =
  /\s+|,|#[^\n]*|(\.\.\.|[{}()[\]:!=$@])|("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|([_A-Za-z][_0-9A-Za-z]*)/y;

function tokenize(source: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < source.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(source);
    if (!m) throw new Error(`Syntax Error: unexpected character at ${at}`);
    const tok = m[1] ?? m[2] ?? m[3] ?? m[4];
    if (tok !== undefined) tokens.push(tok);
  }
  return tokens;
}

export function parse(source: string, operationName?: string): Operation {
  const t = tokenize(source);
  let i = 0;
  const peek = () => t[i];
  const next = () => {
    const tok = t[i++];
    if (tok === undefined) throw new Error("Syntax Error: unexpected end of document");
    return tok;
  };
  const expect = (tok: string) => {
    const got = next();
    if (got !== tok) throw new Error(`Syntax Error: expected "${tok}", found "${got}"`);
  };
  const value = (): Value => {
    const tok = next();
    if (tok === "$") return { $var: next() };
    if (tok.startsWith('"')) return JSON.parse(tok) as string;
    if (/^-?\d/.test(tok)) return Number(tok);
    if (tok === "true" || tok === "false") return tok === "true";
    if (tok === "null") return null;
    if (tok === "[") {
      const list: Value[] = [];
      while (peek() !== "]") list.push(value());
      next();
      return list;
    }
    if (tok === "{") {
      const obj: Record<string, Value> = {};
      while (peek() !== "}") {
        const key = next();
        expect(":");
        obj[key] = value();
      }
      next();
      return obj;
    }
    return tok; // enum value
  };
  const selectionSet = (): Field[] => {
    expect("{");
    const fields: Field[] = [];
    while (peek() !== "}") {
      if (peek() === "...") throw new Error("Fragments are not supported by the simulator");
      let name = next();
      let alias: string | undefined;
      if (peek() === ":") {
        next();
        alias = name;
        name = next();
      }
      const args: Record<string, Value> = {};
      if (peek() === "(") {
        next();
        while (peek() !== ")") {
          const key = next();
          expect(":");
          args[key] = value();
        }
        next();
      }
      const selections = peek() === "{" ? selectionSet() : [];
      fields.push({ ...(alias ? { alias } : {}), name, args, selections });
    }
    next();
    return fields;
  };
  const ops: (Operation & { name?: string })[] = [];
  while (i < t.length) {
    if (peek() === "{") {
      ops.push({ kind: "query", selections: selectionSet() });
      continue;
    }
    const kind = next();
    if (kind !== "query" && kind !== "mutation") throw new Error(`Syntax Error: unexpected "${kind}"`);
    const name = peek() !== "(" && peek() !== "{" ? next() : undefined;
    if (peek() === "(") {
      // Variable definitions: types and defaults are not needed to execute.
      let depth = 0;
      do {
        const tok = next();
        if (tok === "(") depth++;
        if (tok === ")") depth--;
      } while (depth > 0);
    }
    ops.push({ kind, selections: selectionSet(), ...(name ? { name } : {}) });
  }
  const op = operationName ? ops.find((o) => o.name === operationName) : ops[0];
  if (!op) throw new Error("No operation found");
  return op;
}

/** Replaces `$var` references by the request's variables. */
export function resolveArgs(args: Record<string, Value>, variables: Record<string, unknown>): Record<string, unknown> {
  const walk = (v: Value): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") {
      if ("$var" in v && typeof v.$var === "string") return variables[v.$var];
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x as Value)]));
    }
    return v;
  };
  return Object.fromEntries(Object.entries(args).map(([k, v]) => [k, walk(v)]));
}

/** An error that lands in the response's `errors[]` with GitHub's `type`. */
export class GraphqlFieldError extends Error {
  constructor(
    readonly type: "NOT_FOUND" | "FORBIDDEN" | "UNPROCESSABLE",
    message: string,
  ) {
    super(message);
  }
}

/** A resolver is a plain object whose fields are values or (args) => value (possibly async). */
export type Resolver = Record<string, unknown>;

export async function execute(
  selections: Field[],
  root: Resolver,
  variables: Record<string, unknown>,
  typename: string,
): Promise<{ data: Record<string, unknown> | null; errors: Record<string, unknown>[] }> {
  const errors: Record<string, unknown>[] = [];
  const resolveObject = async (fields: Field[], obj: Resolver, path: string[], type: string) => {
    const out: Record<string, unknown> = {};
    for (const field of fields) {
      const key = field.alias ?? field.name;
      if (field.name === "__typename") {
        out[key] = (obj.__typename as string | undefined) ?? type;
        continue;
      }
      try {
        const raw = obj[field.name];
        if (raw === undefined) throw new Error(`Field '${field.name}' doesn't exist on type '${type}'`);
        const value = typeof raw === "function" ? await raw(resolveArgs(field.args, variables)) : raw;
        out[key] = await shape(value, field, [...path, key]);
      } catch (err) {
        out[key] = null;
        errors.push({
          ...(err instanceof GraphqlFieldError ? { type: err.type } : {}),
          path: [...path, key],
          message: (err as Error).message,
        });
      }
    }
    return out;
  };
  const shape = async (value: unknown, field: Field, path: string[]): Promise<unknown> => {
    if (value === null || value === undefined || field.selections.length === 0) return value ?? null;
    if (Array.isArray(value)) return Promise.all(value.map((v, n) => shape(v, field, [...path, String(n)])));
    return resolveObject(field.selections, value as Resolver, path, String((value as Resolver).__typename ?? ""));
  };
  const data = await resolveObject(selections, root, [], typename);
  return { data, errors };
}

/** Label and field selectors as the API server parses them (equality, set-based, existence). */

type Obj = Record<string, unknown>;

interface Requirement {
  key: string;
  op: "=" | "!=" | "in" | "notin" | "exists" | "!exists";
  values: string[];
}

/** Splits on commas that are not inside parentheses: `a in (x,y),b=c` → [`a in (x,y)`, `b=c`]. */
function splitTop(sel: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of sel) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

export function parseSelector(sel: string | null | undefined): Requirement[] {
  if (!sel) return [];
  return splitTop(sel).map((part): Requirement => {
    const set = /^(\S+)\s+(in|notin)\s+\((.*)\)$/.exec(part);
    if (set) return { key: set[1]!, op: set[2] as "in" | "notin", values: set[3]!.split(",").map((v) => v.trim()) };
    const neq = /^([^!=]+)!=(.*)$/.exec(part);
    if (neq) return { key: neq[1]!.trim(), op: "!=", values: [neq[2]!.trim()] };
    const eq = /^([^!=]+)==?(.*)$/.exec(part);
    if (eq) return { key: eq[1]!.trim(), op: "=", values: [eq[2]!.trim()] };
    if (part.startsWith("!")) return { key: part.slice(1).trim(), op: "!exists", values: [] };
    return { key: part, op: "exists", values: [] };
  });
}

function matches(reqs: Requirement[], lookup: (key: string) => string | undefined): boolean {
  return reqs.every((r) => {
    const v = lookup(r.key);
    switch (r.op) {
      case "=":
        return v === r.values[0];
      case "!=":
        return v !== r.values[0];
      case "in":
        return v !== undefined && r.values.includes(v);
      case "notin":
        return v === undefined || !r.values.includes(v);
      case "exists":
        return v !== undefined;
      case "!exists":
        return v === undefined;
      default:
        return false;
    }
  });
}

export function matchesLabels(reqs: Requirement[], obj: Obj): boolean {
  const labels = ((obj.metadata as Obj | undefined)?.labels ?? {}) as Record<string, string>;
  return matches(reqs, (k) => labels[k]);
}

/** Field selectors work on any dotted path (metadata.name, involvedObject.uid, status.phase, spec.nodeName). */
export function matchesFields(reqs: Requirement[], obj: Obj): boolean {
  return matches(reqs, (k) => {
    let cur: unknown = obj;
    for (const part of k.split(".")) {
      if (cur === null || typeof cur !== "object") return "";
      cur = (cur as Obj)[part];
    }
    if (cur === undefined || cur === null) return "";
    return String(cur);
  });
}

export type { Requirement };

/** The four patch types the API server accepts. */
import { ApiError, badRequest } from "./errors.ts";

type Json = unknown;
type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Lists the API server merges by key under strategic merge patch (the common ones). */
const MERGE_KEYS: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  env: "name",
  volumes: "name",
  volumeMounts: "mountPath",
  ports: "containerPort",
  conditions: "type",
  ownerReferences: "uid",
  imagePullSecrets: "name",
};

/**
 * Strategic merge patch, simplified: merge patch for maps, merge-by-key for the well-known lists, and the
 * `$patch: delete` / `$setElementOrder` directives understood or dropped.
 */
export function strategicMergePatch(target: Json, patch: Json, key?: string): Json {
  if (!isObject(patch)) {
    const mk = key ? MERGE_KEYS[key] : undefined;
    if (mk && Array.isArray(patch) && Array.isArray(target)) return mergeList(target, patch, mk);
    return structuredClone(patch);
  }
  if (patch.$patch === "replace") {
    const { $patch: _, ...rest } = patch;
    return structuredClone(rest);
  }
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith("$")) continue;
    if (v === null) delete out[k];
    else out[k] = strategicMergePatch(out[k], v, k);
  }
  return out;
}

function mergeList(target: unknown[], patch: unknown[], mk: string): unknown[] {
  const out = [...target];
  for (const item of patch) {
    if (!isObject(item)) {
      out.push(item);
      continue;
    }
    const idx = out.findIndex((t) => isObject(t) && t[mk] === item[mk]);
    if (item.$patch === "delete") {
      if (idx >= 0) out.splice(idx, 1);
    } else if (idx >= 0) out[idx] = strategicMergePatch(out[idx], item);
    else out.push(strategicMergePatch(undefined, item));
  }
  return out;
}

interface JsonPatchOp {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

function pointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw badRequest(`invalid JSON pointer ${path}`);
  return path
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function parentOf(doc: Json, parts: string[]): { parent: unknown; last: string } {
  let cur: unknown = doc;
  for (const p of parts.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(p)];
    else if (isObject(cur)) cur = cur[p];
    else cur = undefined;
    if (cur === undefined) throw badRequest(`doc is missing path: ${parts.join("/")}`);
  }
  return { parent: cur, last: parts[parts.length - 1] ?? "" };
}

function getAt(doc: Json, path: string): unknown {
  const parts = pointer(path);
  if (parts.length === 0) return doc;
  const { parent, last } = parentOf(doc, parts);
  const v = Array.isArray(parent) ? parent[Number(last)] : isObject(parent) ? parent[last] : undefined;
  if (v === undefined) throw badRequest(`doc is missing key: ${path}`);
  return v;
}

function removeAt(doc: Json, path: string): void {
  const { parent, last } = parentOf(doc, pointer(path));
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!(i >= 0 && i < parent.length)) throw badRequest(`unable to remove nonexistent index: ${path}`);
    parent.splice(i, 1);
  } else if (isObject(parent) && last in parent) delete parent[last];
  else throw badRequest(`unable to remove nonexistent key: ${path}`);
}

function addAt(doc: Json, path: string, value: unknown, replace: boolean): Json {
  const parts = pointer(path);
  if (parts.length === 0) return structuredClone(value);
  const { parent, last } = parentOf(doc, parts);
  if (Array.isArray(parent)) {
    const i = last === "-" ? parent.length : Number(last);
    if (!(i >= 0 && i <= parent.length)) throw badRequest(`index out of bounds: ${path}`);
    if (replace) parent[i] = structuredClone(value);
    else parent.splice(i, 0, structuredClone(value));
  } else if (isObject(parent)) {
    if (replace && !(last in parent)) throw badRequest(`replace operation does not apply: doc is missing key: ${path}`);
    parent[last] = structuredClone(value);
  } else throw badRequest(`doc is missing path: ${path}`);
  return doc;
}

/** RFC 6902 JSON patch. */
export function jsonPatch(target: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw badRequest("json patch must be an array of operations");
  let doc = structuredClone(target);
  for (const o of ops as JsonPatchOp[]) {
    switch (o.op) {
      case "add":
        doc = addAt(doc, o.path, o.value, false);
        break;
      case "replace":
        doc = addAt(doc, o.path, o.value, true);
        break;
      case "remove":
        removeAt(doc, o.path);
        break;
      case "move": {
        const v = getAt(doc, o.from ?? "");
        removeAt(doc, o.from ?? "");
        doc = addAt(doc, o.path, v, false);
        break;
      }
      case "copy":
        doc = addAt(doc, o.path, getAt(doc, o.from ?? ""), false);
        break;
      case "test":
        if (JSON.stringify(getAt(doc, o.path)) !== JSON.stringify(o.value))
          throw new ApiError(
            422,
            "Invalid",
            `the server rejected our request due to an error in our request: testing value ${o.path} failed`,
          );
        break;
      default:
        throw badRequest(`Unexpected kind: ${o.op}`);
    }
  }
  return doc;
}

const UNSUPPORTED =
  "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

/**
 * Applies a PATCH body by its Content-Type. Custom resources have no strategic merge (415, as in the API
 * server); server-side apply is simplified to a merge of the applied configuration.
 */
export function applyPatch(current: Obj, contentType: string, body: unknown, isCustomResource: boolean): Obj {
  if (contentType.startsWith("application/merge-patch+json")) return mergePatch(current, body) as Obj;
  if (contentType.startsWith("application/json-patch+json")) return jsonPatch(current, body) as Obj;
  if (contentType.startsWith("application/strategic-merge-patch+json")) {
    if (isCustomResource) throw new ApiError(415, "UnsupportedMediaType", UNSUPPORTED);
    return strategicMergePatch(current, body) as Obj;
  }
  if (contentType.startsWith("application/apply-patch+yaml")) return mergePatch(current, body) as Obj;
  throw new ApiError(415, "UnsupportedMediaType", UNSUPPORTED);
}

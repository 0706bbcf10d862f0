/** HTTP plumbing shared by the simulator's handlers: responses, bodies, content negotiation. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { parse as parseYaml } from "yaml";
import { badRequest } from "./errors.ts";
import type { IncludeObject } from "./table.ts";

export function send(res: ServerResponse, code: number, body: unknown, contentType = "application/json"): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(code, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export function parseBody(text: string, contentType: string): unknown {
  if (!text.trim()) return undefined;
  try {
    if (contentType.includes("yaml")) return parseYaml(text);
    return JSON.parse(text);
  } catch (e) {
    throw badRequest(`error decoding body: ${(e as Error).message}`);
  }
}

/** `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` (kubectl get). */
export function wantTable(req: IncomingMessage): boolean {
  return /as=Table/.test(req.headers.accept ?? "");
}

/** `Accept: application/json;as=PartialObjectMetadata...` (metadata-only clients). */
export function wantPartial(req: IncomingMessage): boolean {
  return /as=PartialObjectMetadata/.test(req.headers.accept ?? "");
}

export function includeObject(q: URLSearchParams): IncludeObject {
  const v = q.get("includeObject");
  return v === "None" || v === "Object" ? v : "Metadata";
}

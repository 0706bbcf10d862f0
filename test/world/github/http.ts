import type { IncomingMessage, ServerResponse } from "node:http";
import { createGunzip } from "node:zlib";

/** A GitHub-shaped error: `{ message, documentation_url, status }` plus optional validation errors. */
export class GitHubError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: unknown[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): Record<string, unknown> {
    return {
      message: this.message,
      ...(this.errors ? { errors: this.errors } : {}),
      documentation_url: "https://docs.github.com/enterprise-server@3.17/rest",
      status: String(this.status),
    };
  }
}

export const notFound = () => new GitHubError(404, "Not Found");
export const forbidden = () => new GitHubError(403, "Resource not accessible by integration");
export const validationFailed = (...errors: unknown[]) => new GitHubError(422, "Validation Failed", errors);

export interface Reply {
  status: number;
  body?: unknown;
  /** Sent as is instead of JSON (diff and patch media types). */
  text?: string;
  headers?: Record<string, string>;
}

/** The request body as bytes, inflated when the client sent `Content-Encoding: gzip`. */
export function requestStream(req: IncomingMessage): NodeJS.ReadableStream {
  return req.headers["content-encoding"] === "gzip" ? req.pipe(createGunzip()) : req;
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of requestStream(req)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = (await readBody(req)).toString("utf8");
  if (raw.trim() === "") return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    // `POST .../labels` also accepts a bare array; callers look at `_array`.
    return Array.isArray(parsed) ? { _array: parsed } : (parsed as Record<string, unknown>);
  } catch {
    throw new GitHubError(400, "Problems parsing JSON");
  }
}

export function send(res: ServerResponse, reply: Reply): void {
  const headers: Record<string, string> = { ...reply.headers };
  if (reply.text !== undefined) {
    headers["content-type"] ??= "text/plain; charset=utf-8";
    res.writeHead(reply.status, headers).end(reply.text);
    return;
  }
  if (reply.body === undefined) {
    res.writeHead(reply.status, headers).end();
    return;
  }
  headers["content-type"] ??= "application/json; charset=utf-8";
  res.writeHead(reply.status, headers).end(JSON.stringify(reply.body));
}

/** GitHub's timestamps carry no milliseconds. */
export const isoNow = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

/** `?per_page=&page=` slicing with a GitHub-style Link header (first/prev/next/last). */
export function paginate<T>(items: T[], url: URL): Reply {
  const perPage = Math.min(Math.max(Number(url.searchParams.get("per_page") ?? 30) || 30, 1), 100);
  const page = Math.max(Number(url.searchParams.get("page") ?? 1) || 1, 1);
  const last = Math.max(Math.ceil(items.length / perPage), 1);
  const link = (p: number, rel: string) => {
    const u = new URL(url);
    u.searchParams.set("per_page", String(perPage));
    u.searchParams.set("page", String(p));
    return `<${u.toString()}>; rel="${rel}"`;
  };
  const links: string[] = [];
  if (page > 1) links.push(link(page - 1, "prev"));
  if (page < last) links.push(link(page + 1, "next"), link(last, "last"));
  if (page > 1) links.push(link(1, "first"));
  return {
    status: 200,
    body: items.slice((page - 1) * perPage, page * perPage),
    headers: links.length ? { link: links.join(", ") } : {},
  };
}

import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";

/**
 * Hono's bodyLimit, judging by Content-Length alone when the request has one: touching
 * `c.req.raw.body` (as bodyLimit does) makes @hono/node-server build a web stream and skip its
 * fast body path, which cost a third of a webhook's CPU. Node's HTTP parser never delivers more
 * bytes than Content-Length says. Chunked bodies go through bodyLimit, which counts them.
 * Either way an oversized body is a 413 `HTTPException`.
 *
 * @example
 * app.post("/webhooks/github", limitBody(1024 * 1024), handler);
 */
export function limitBody(maxBytes: number): MiddlewareHandler {
  const tooLarge = () => new HTTPException(413, { message: `body larger than ${maxBytes} bytes` });
  const counting = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw tooLarge();
    },
  });
  return async (c, next) => {
    const length = c.req.header("content-length");
    if (length === undefined || c.req.header("transfer-encoding") !== undefined) return counting(c, next);
    if (!/^\d+$/.test(length) || Number(length) > maxBytes) throw tooLarge();
    await next();
  };
}

import type { IncomingMessage } from "node:http";
import { connect, isIP } from "node:net";
import type { Duplex } from "node:stream";
import { credentialFrom, verify } from "./auth.ts";
import type { HostRule } from "./config.ts";
import { type EgressDeps, record } from "./http.ts";

/**
 * Everything that is neither the model nor the forge: an HTTP CONNECT proxy (HTTPS_PROXY for the
 * runner's tools) that opens a tunnel only to hosts on the allowlist (package registries, when the
 * chart turns them on), for a current attempt (Proxy-Authorization carries the attempt token).
 * The tunnel is opaque TLS: the gateway decides by host and port, never sees content. Plain-HTTP
 * proxying (absolute URLs) is not offered at all.
 */

export function hostAllowed(host: string, port: number, allow: HostRule[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  return allow.some(
    (r) => r.port === port && (r.wildcard ? h.endsWith(r.host) && h.length > r.host.length : h === r.host),
  );
}

/** `host:port` of a CONNECT request target; IPv6 in brackets. */
export function parseAuthority(target: string | undefined): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(target ?? "");
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? "", port };
}

function reply(socket: Duplex, status: string, message: string, headers: string[] = []) {
  const body = `egress: ${message}\n`;
  socket.end(
    [
      `HTTP/1.1 ${status}`,
      "content-type: text/plain",
      `content-length: ${Buffer.byteLength(body)}`,
      "connection: close",
      ...headers,
      "",
      body,
    ].join("\r\n"),
  );
}

/** `tunnels` holds the open tunnels, so shutdown can close them (server.close() waits for none of them). */
export function connectHandler(deps: EgressDeps, tunnels: Set<Duplex> = new Set()) {
  const { config } = deps;
  return async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    socket.on("error", () => {});
    tunnels.add(socket);
    socket.once("close", () => tunnels.delete(socket));
    const target = parseAuthority(req.url);
    const base = { kind: "connect" as const, method: "CONNECT", host: req.url ?? "", path: "" };
    if (!target) {
      await record(deps, { ...base, decision: "refused", reason: "bad_target", status: 400 });
      return reply(socket, "400 Bad Request", "CONNECT needs host:port");
    }
    const credential = credentialFrom(req.headers["proxy-authorization"]);
    const verified = await verify(credential, config.attemptKey);
    if (!verified.ok) {
      await record(deps, { ...base, decision: "refused", reason: verified.reason, status: 407 });
      return reply(socket, "407 Proxy Authentication Required", verified.message, [
        'proxy-authenticate: Basic realm="agentfactory-egress"',
      ]);
    }
    const attempt = verified.attempt;
    const current = await deps.ledger.current(attempt);
    if ("refusal" in current) {
      await record(deps, { ...base, attempt, decision: "refused", reason: current.refusal, status: 407 });
      return reply(socket, "407 Proxy Authentication Required", "this attempt is not active");
    }
    if (!hostAllowed(target.host, target.port, config.connect.allow)) {
      await record(deps, { ...base, attempt, decision: "refused", reason: "host_not_allowed", status: 403 });
      return reply(socket, "403 Forbidden", `${target.host}:${target.port} is not on the egress allowlist`);
    }
    const started = performance.now();
    const host = target.host.replace(/^\[|\]$/g, "");
    const upstream = connect({ host, port: target.port, family: isIP(host) || undefined });
    let up = head.length;
    let down = 0;
    let established = false;
    const timer = setTimeout(() => upstream.destroy(new Error("connect timeout")), config.connect.timeoutMs);
    upstream.once("connect", () => {
      clearTimeout(timer);
      established = true;
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) upstream.write(head);
      socket.on("data", (d: Buffer) => {
        up += d.length;
      });
      upstream.on("data", (d: Buffer) => {
        down += d.length;
      });
      socket.pipe(upstream);
      upstream.pipe(socket);
    });
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!established) {
        void record(deps, {
          ...base,
          attempt,
          decision: "allowed",
          reason: "upstream_error",
          status: 502,
          error: err?.message,
        });
        reply(socket, "502 Bad Gateway", `could not connect to ${target.host}:${target.port}`);
        return;
      }
      void record(deps, {
        ...base,
        attempt,
        decision: "allowed",
        status: 200,
        bytesUp: up,
        bytesDown: down,
        ms: Math.round(performance.now() - started),
      });
      socket.destroy();
      upstream.destroy();
    };
    upstream.on("error", finish);
    upstream.on("close", () => finish());
    socket.on("close", () => {
      if (established) finish();
      else upstream.destroy();
    });
  };
}

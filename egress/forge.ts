import { gunzipSync } from "node:zlib";
import type { Context } from "hono";
import { request } from "undici";
import type { VerifiedAttempt } from "../core/attempt-token.ts";
import { credentialFrom, verify } from "./auth.ts";
import { bodyRefusal, decideApi, protectedTouched } from "./forge-rules.ts";
import {
  downstreamHeaders,
  type EgressDeps,
  readLimited,
  record,
  sendUpstream,
  upstreamHeaders,
  type Where,
} from "./http.ts";
import type { Kind } from "./metrics.ts";
import { isDeletion, ProtocolError, parseReceivePack, refusal } from "./pktline.ts";

/**
 * The forge proxy. Git smart HTTP at `/<owner>/<repo>.git/…` and the REST API at `/api/v3/…` (the
 * GitHub Enterprise layout, so the runner points both its clone URL and Octokit at the gateway). The
 * runner's credential is its attempt token; the gateway adds the stage's installation token, which
 * the operator gave it with the reservation. Rules: fetch only the run's repository; push only the
 * run's `agent/…` branch, in the stages that push, and never a commit touching a protected path;
 * REST only to the stage's endpoints on that repository (forge-rules.ts); GraphQL refused.
 */

const GIT_PATH = /^\/([^/]+)\/([^/]+?)(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack)$/;
const PUSHING_STAGES = new Set(["write", "remediate"]);
const REALM = 'Basic realm="agentfactory-egress"';

export function isGitPath(path: string): boolean {
  return GIT_PATH.test(path);
}

/** What a sealed forge token is bound to: one attempt of one run (uid included). */
function sealContext(a: Pick<VerifiedAttempt, "run" | "stage" | "attempt">): string {
  return `${a.run.namespace}/${a.run.name}/${a.run.uid}/${a.stage}/${a.attempt}`;
}

export { sealContext as forgeTokenContext };

/** Authenticates the attempt and opens its forge token; a Response when that fails. */
async function authorize(
  deps: EgressDeps,
  c: Context,
  base: Where,
  deny: (status: number, message: string, headers?: Record<string, string>) => Response,
): Promise<{ attempt: VerifiedAttempt; token: string } | Response> {
  const credential = credentialFrom(c.req.header("authorization"));
  if (!credential) {
    await record(deps, { ...base, decision: "refused", reason: "no_credential", status: 401 });
    return deny(401, "authentication required", { "www-authenticate": REALM });
  }
  const verified = await verify(credential, deps.config.attemptKey);
  if (!verified.ok) {
    await record(deps, { ...base, decision: "refused", reason: verified.reason, status: 401 });
    return deny(401, verified.message, { "www-authenticate": REALM });
  }
  const attempt = verified.attempt;
  const current = await deps.ledger.current(attempt);
  if ("refusal" in current) {
    await record(deps, { ...base, attempt, decision: "refused", reason: current.refusal, status: 401 });
    return deny(401, "this attempt is not active", { "www-authenticate": REALM });
  }
  const sealed = current.stage.forgeToken;
  const token = sealed ? deps.sealer.open(sealed, sealContext(attempt)) : undefined;
  if (!token) {
    await record(deps, { ...base, attempt, decision: "refused", reason: "no_forge_token", status: 403 });
    return deny(403, "the operator gave no forge token for this attempt");
  }
  return { attempt, token };
}

function textDeny(status: number, message: string, headers: Record<string, string> = {}) {
  return new Response(`egress: ${message}\n`, { status, headers: { "content-type": "text/plain", ...headers } });
}

function jsonDeny(status: number, message: string, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify({ message: `egress: ${message}`, documentation_url: "docs/security.md" }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** Forwards to the forge and streams the answer back, recording the outcome at its end. */
async function forward(
  deps: EgressDeps,
  c: Context,
  kind: Kind,
  target: string,
  init: { method: string; headers: Record<string, string>; body?: Buffer | null },
  outcome: Where,
  rewrite?: (headers: Headers) => void,
): Promise<Response> {
  const started = performance.now();
  let upstream: Awaited<ReturnType<typeof request>>;
  try {
    upstream = await request(target, {
      method: init.method as "GET",
      headers: init.headers,
      body: init.body ?? null,
      dispatcher: deps.dispatcher,
      signal: c.req.raw.signal,
    });
  } catch (err) {
    void record(deps, {
      ...outcome,
      kind,
      decision: "allowed",
      reason: "upstream_error",
      status: 502,
      error: String(err),
    });
    return textDeny(502, "the forge could not be reached");
  }
  const headers = downstreamHeaders(upstream.headers);
  rewrite?.(headers);
  let bytesDown = 0;
  if (upstream.statusCode === 204 || upstream.statusCode === 304) upstream.body.resume();
  return sendUpstream(
    c,
    upstream.statusCode,
    headers,
    upstream.body,
    (chunk) => {
      bytesDown += chunk.length;
    },
    async (error) => {
      deps.metrics.upstreamDuration.observe({ kind }, (performance.now() - started) / 1000);
      void record(deps, {
        ...outcome,
        kind,
        decision: "allowed",
        status: upstream.statusCode,
        bytesUp: init.body?.length ?? 0,
        bytesDown,
        ms: Math.round(performance.now() - started),
        ...(error ? { error: String((error as Error)?.message ?? error) } : {}),
      });
    },
  );
}

const basicAuth = (token: string) => `Basic ${Buffer.from(`x-access-token:${token}`).toString("base64")}`;

export function gitHandler(deps: EgressDeps) {
  const { config } = deps;
  const forgeHost = new URL(config.forge.gitUrl).host;
  return async (c: Context): Promise<Response> => {
    const url = new URL(c.req.url);
    const m = GIT_PATH.exec(url.pathname);
    const method = c.req.method;
    const base = { kind: "git" as const, method, host: forgeHost, path: url.pathname };
    if (!m) return textDeny(404, "not a git smart HTTP path");
    const [, owner = "", name = "", endpoint = ""] = m;
    const auth = await authorize(deps, c, base, textDeny);
    if (auth instanceof Response) return auth;
    const { attempt, token } = auth;
    const deny = async (status: number, reason: string, message: string) => {
      await record(deps, { ...base, attempt, decision: "refused", reason, status });
      return textDeny(status, message);
    };
    if (`${owner}/${name}`.toLowerCase() !== attempt.repo.toLowerCase()) {
      return deny(403, "other_repository", `${owner}/${name} is not this run's repository (${attempt.repo})`);
    }
    const service = endpoint === "info/refs" ? url.searchParams.get("service") : endpoint;
    const expectedMethod = endpoint === "info/refs" ? "GET" : "POST";
    if (method !== expectedMethod || (service !== "git-upload-pack" && service !== "git-receive-pack")) {
      return deny(403, "git_endpoint", "only smart HTTP fetch and push are allowed");
    }
    if (service === "git-receive-pack" && !PUSHING_STAGES.has(attempt.stage)) {
      return deny(403, "push_not_allowed", `the ${attempt.stage} stage may not push`);
    }
    const target = `${config.forge.gitUrl}/${attempt.repo}.git/${endpoint}${url.search}`;
    const headers = upstreamHeaders(c.req.raw.headers, { authorization: basicAuth(token) });
    const outcome = { ...base, attempt, service };
    if (method === "GET") return forward(deps, c, "git", target, { method, headers }, outcome);

    const limit = service === "git-receive-pack" ? config.forge.pushLimitBytes : 64 << 20;
    const body = await readLimited(c, limit);
    if (!body) return deny(413, "too_large", "the request is too large");
    if (service === "git-upload-pack") return forward(deps, c, "git", target, { method, headers, body }, outcome);
    return receivePack(deps, c, { attempt, token, body, target, headers, outcome, deny });
  };
}

async function receivePack(
  deps: EgressDeps,
  c: Context,
  p: {
    attempt: VerifiedAttempt;
    token: string;
    body: Buffer;
    target: string;
    headers: Record<string, string>;
    outcome: Where;
    deny: (status: number, reason: string, message: string) => Promise<Response>;
  },
): Promise<Response> {
  const { attempt } = p;
  let body = p.body;
  const headers = { ...p.headers };
  if (/gzip/i.test(c.req.header("content-encoding") ?? "")) {
    try {
      body = gunzipSync(body, { maxOutputLength: deps.config.forge.pushLimitBytes });
    } catch {
      return p.deny(400, "bad_request", "the push could not be inflated");
    }
    delete headers["content-encoding"];
  }
  let req: ReturnType<typeof parseReceivePack>;
  try {
    req = parseReceivePack(body);
  } catch (err) {
    const message = err instanceof ProtocolError ? err.message : "unreadable push";
    return p.deny(400, "bad_request", message);
  }
  const refuse = async (reason: string, message: string, extra: Record<string, unknown> = {}) => {
    await record(deps, { ...p.outcome, kind: "git", decision: "refused", reason, status: 200, ...extra });
    return new Response(refusal(req, `egress: ${message}`), {
      status: 200,
      headers: { "content-type": "application/x-git-receive-pack-result", "cache-control": "no-cache" },
    });
  };
  const allowedRef = `refs/heads/${attempt.branch}`;
  const refs = req.updates.map((u) => u.ref);
  const foreign = req.updates.filter((u) => u.ref !== allowedRef);
  if (foreign.length > 0) {
    return refuse(
      "other_branch",
      `this run may push only ${attempt.branch}, not ${foreign.map((u) => u.ref.replace(/^refs\/heads\//, "")).join(", ")}`,
      { refs },
    );
  }
  if (req.updates.some(isDeletion)) return refuse("delete", `this run may not delete ${attempt.branch}`, { refs });
  let touched: string[];
  try {
    touched = await deps.inspector.touchedPaths(attempt.repo, p.token, req.updates, req.pack);
  } catch (err) {
    deps.logger.warn({ event: "push_inspect_failed", err: String((err as Error).message) }, "push not inspected");
    return refuse("uninspectable", "the push could not be inspected, so it was not forwarded; push again", { refs });
  }
  const hits = protectedTouched(touched, deps.config.forge.protectedPaths);
  if (hits.length > 0) {
    return refuse(
      "protected_path",
      `the push changes ${hits.slice(0, 5).join(", ")}${hits.length > 5 ? " and more" : ""}; workflows and .claude/settings.json are changed by humans only`,
      { refs, paths: hits.slice(0, 20) },
    );
  }
  return forward(deps, c, "git", p.target, { method: "POST", headers, body }, { ...p.outcome, refs });
}

export function apiHandler(deps: EgressDeps) {
  const { config } = deps;
  const apiBase = config.forge.apiUrl;
  const apiHost = new URL(apiBase).host;
  return async (c: Context): Promise<Response> => {
    const url = new URL(c.req.url);
    const method = c.req.method;
    const path = url.pathname.replace(/^\/api\/v3/, "") || "/";
    const base = { kind: "api" as const, method, host: apiHost, path };
    const auth = await authorize(deps, c, base, jsonDeny);
    if (auth instanceof Response) return auth;
    const { attempt, token } = auth;
    const decision = decideApi(attempt.stage, attempt.repo, method, path);
    if (!decision.allowed) {
      await record(deps, {
        ...base,
        attempt,
        decision: "refused",
        reason: "endpoint",
        status: 403,
        why: decision.reason,
      });
      return jsonDeny(403, decision.reason);
    }
    const body = method === "GET" || method === "HEAD" ? null : await readLimited(c, 16 << 20);
    if (body === undefined) {
      await record(deps, { ...base, attempt, decision: "refused", reason: "too_large", status: 413 });
      return jsonDeny(413, "the request is too large");
    }
    const refusedBody = bodyRefusal(method, path, body, attempt);
    if (refusedBody) {
      await record(deps, { ...base, attempt, decision: "refused", reason: "body", status: 403, why: refusedBody });
      return jsonDeny(403, refusedBody);
    }
    const headers = upstreamHeaders(c.req.raw.headers, { authorization: `token ${token}` });
    // Pagination links point at the forge; the runner can only follow them through the gateway.
    const self = `${url.protocol}//${url.host}/api/v3`;
    return forward(
      deps,
      c,
      "api",
      `${apiBase}${path}${url.search}`,
      { method, headers, body },
      { ...base, attempt },
      (h) => {
        const link = h.get("link");
        if (link) h.set("link", link.split(apiBase).join(self));
      },
    );
  };
}

export function graphqlHandler(deps: EgressDeps) {
  const host = new URL(deps.config.forge.apiUrl).host;
  return async (c: Context): Promise<Response> => {
    const verified = await verify(credentialFrom(c.req.header("authorization")), deps.config.attemptKey);
    await record(deps, {
      kind: "api",
      method: c.req.method,
      host,
      path: "/graphql",
      decision: "refused",
      reason: "graphql",
      status: 403,
      ...(verified.ok ? { attempt: verified.attempt } : {}),
    });
    return new Response(
      JSON.stringify({ errors: [{ message: "egress: GraphQL is not allowed for runner pods; use the REST API" }] }),
      { status: 403, headers: { "content-type": "application/json" } },
    );
  };
}

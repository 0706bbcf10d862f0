/**
 * The test world as one process for `make e2e-kind`: the GitHub simulator (REST, GraphQL, git smart
 * HTTP) and the scripted Anthropic API from test/world, each behind a proxy on 0.0.0.0 so pods reach
 * them through Services, plus a small control API the suite on the host drives through
 * `kubectl port-forward`. The simulators are the ones the local end-to-end tests use; this file only
 * puts them on the cluster's network.
 *
 * Ports (env): GITHUB_PORT 8080, ANTHROPIC_PORT 8081, CONTROL_PORT 8090.
 * PUBLIC_GITHUB_URL (e.g. http://github.agentfactory-world.svc): replaces the simulator's loopback
 * URL in JSON responses so html_url/clone_url point where pods can go.
 *
 * Control API:
 *   GET  /healthz
 *   GET  /info                      → { github: { serverUrl, apiUrl, appId, appSlug, botLogin, installationId, privateKeyPem } }
 *   POST /github/<method>  [args]   → result of GitHubSim.<method>(...args), e.g. createRepo, createIssue, pulls
 *   GET  /anthropic/requests        → [{ stage, turn, status, error }]
 */
import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import { startModelSim } from "../world/anthropic/index.ts";
import { type GitHubSim, startGitHubSim } from "../world/github/index.ts";
import { scenario, users } from "./scenario.ts";

const env = (name: string, fallback: string) => process.env[name] || fallback;

/** Forwards a request to `target`; JSON bodies get `from` rewritten to `to` (loopback → public URL). */
function proxy(target: string, rewrite?: { from: string; to: string }) {
  const upstream = new URL(target);
  return (req: IncomingMessage, res: ServerResponse) => {
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (reply) => {
        const json = rewrite && String(reply.headers["content-type"] ?? "").includes("json");
        if (!json) {
          res.writeHead(reply.statusCode ?? 502, reply.headers);
          reply.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        reply.on("data", (chunk: Buffer) => chunks.push(chunk));
        reply.on("end", () => {
          const body = Buffer.from(Buffer.concat(chunks).toString("utf8").replaceAll(rewrite.from, rewrite.to));
          const headers = { ...reply.headers, "content-length": String(body.length) };
          delete headers["transfer-encoding"];
          res.writeHead(reply.statusCode ?? 502, headers).end(body);
        });
      },
    );
    forward.on("error", (error) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(`world proxy: ${error.message}`);
    });
    req.pipe(forward);
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  return text ? JSON.parse(text) : [];
}

function listen(handler: Parameters<typeof createServer>[1], port: number): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer(handler);
    server.listen(port, env("HOST", "0.0.0.0"), () => {
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : port);
    });
  });
}

export interface World {
  github: GitHubSim;
  ports: { github: number; anthropic: number; control: number };
}

export async function startWorld(): Promise<World> {
  const github = await startGitHubSim({ users });
  const model = await startModelSim({ scenario });
  const publicGithub = env("PUBLIC_GITHUB_URL", github.serverUrl);
  const send = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body ?? null));

  const control = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    try {
      if (path === "/healthz") return send(res, 200, { status: "ok" });
      if (path === "/info") {
        const { apiUrl, serverUrl, graphqlUrl, appId, appSlug, botLogin, installationId, privateKeyPem } = github;
        const rewrite = (url: string) => url.replace(serverUrl, publicGithub);
        return send(res, 200, {
          github: {
            serverUrl: publicGithub,
            apiUrl: rewrite(apiUrl),
            graphqlUrl: rewrite(graphqlUrl),
            appId,
            appSlug,
            botLogin,
            installationId,
            privateKeyPem,
          },
        });
      }
      if (path === "/anthropic/requests")
        return send(
          res,
          200,
          model.requests.map(({ stage, turn, status, error }) => ({ stage, turn, status, error })),
        );
      const call = /^\/github\/([A-Za-z]+)$/.exec(path);
      if (call && req.method === "POST") {
        const method = call[1] as keyof GitHubSim;
        const fn = github[method];
        if (typeof fn !== "function") return send(res, 404, { error: `no GitHubSim.${String(method)}` });
        const args = (await readJson(req)) as unknown[];
        return send(res, 200, await (fn as (...a: unknown[]) => unknown).apply(github, args));
      }
      return send(res, 404, { error: `no route ${path}` });
    } catch (error) {
      return send(res, 500, { error: (error as Error).message });
    }
  };

  const ports = {
    github: await listen(
      proxy(github.serverUrl, { from: github.serverUrl, to: publicGithub }),
      Number(env("GITHUB_PORT", "8080")),
    ),
    anthropic: await listen(proxy(model.url), Number(env("ANTHROPIC_PORT", "8081"))),
    control: await listen(control, Number(env("CONTROL_PORT", "8090"))),
  };
  return { github, ports };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  startWorld().then(
    ({ ports }) => console.log(JSON.stringify({ msg: "world listening", ...ports })),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}

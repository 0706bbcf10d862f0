/**
 * What of `make e2e-kind` can run without a Docker engine: the images' bundles (built by
 * test/e2e-kind/build-images.sh exactly as for the images) start as real processes and serve
 * /healthz and /metrics (linted by promtool), the in-cluster test world answers through its proxies
 * and control API, and the world's manifests and kind values pass the same checks as the chart.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { type K8sObject, REPO_ROOT } from "./helm.ts";
import { restrictedViolations } from "./pod-security.ts";
import { checkMetrics } from "./prometheus.ts";
import { validateObject } from "./validate.ts";

const exec = promisify(execFile);
const KIND_DIR = join(REPO_ROOT, "test", "e2e-kind");
let dir = "";
const children: ChildProcess[] = [];

/** Starts `node <bundle>` and resolves with the first JSON log line matching `ready`. */
function start(bundle: string, env: Record<string, string>, ready: (line: Record<string, unknown>) => boolean) {
  const child = spawn(process.execPath, [bundle], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: "pipe" });
  children.push(child);
  let output = "";
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${bundle} did not start:\n${output.slice(-3000)}`)), 20_000);
    const onData = (chunk: Buffer) => {
      output += String(chunk);
      for (const line of output.split("\n")) {
        try {
          const json = JSON.parse(line) as Record<string, unknown>;
          if (ready(json)) {
            clearTimeout(timer);
            return resolve(json);
          }
        } catch {
          // not a JSON line
        }
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => reject(new Error(`${bundle} exited ${code}:\n${output.slice(-3000)}`)));
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "af-kind-"));
  await exec(join(KIND_DIR, "build-images.sh"), ["--bundle-only"], { env: { ...process.env, DIST: dir } });
}, 120_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("control-plane image bundles", () => {
  it("the gateway starts, serves /healthz and a /metrics that passes promtool", async () => {
    const line = await start(
      join(dir, "control-plane", "gateway.mjs"),
      { PORT: "0", HOST: "127.0.0.1", DISPATCH_TOKEN: "t", NATS_URL: "nats://127.0.0.1:1", LOG_LEVEL: "info" },
      (l) => l.event === "listening",
    );
    const url = `http://127.0.0.1:${line.port}`;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain("# TYPE agentfactory_webhooks_total counter");
    expect(await checkMetrics(metrics)).toEqual([]);
  });

  it("the egress gateway starts unready without NATS, serves /healthz and a /metrics that passes promtool", async () => {
    const line = await start(
      join(dir, "control-plane", "egress.mjs"),
      {
        PORT: "0",
        ADMIN_PORT: "0",
        METRICS_PORT: "0",
        HOST: "127.0.0.1",
        NATS_URL: "nats://127.0.0.1:1",
        ATTEMPT_TOKEN_KEY: "k".repeat(32),
        ADMIN_TOKEN: "admin-token-0123456789",
        MODEL_API_KEY: "sk-ant-x",
        GIT_CACHE_DIR: join(dir, "egress-cache"),
      },
      (l) => l.event === "listening",
    );
    const url = `http://127.0.0.1:${line.metricsPort}`;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain("# TYPE agentfactory_egress_requests_total counter");
    expect(await checkMetrics(metrics)).toEqual([]);
  });

  it("the operator starts its probes and /metrics before leadership, and the exposition passes promtool", async () => {
    const kubeconfig = join(dir, "kubeconfig");
    await writeFile(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "none", cluster: { server: "http://127.0.0.1:1" } }],
        users: [{ name: "none", user: { token: "none" } }],
        contexts: [{ name: "none", context: { cluster: "none", user: "none" } }],
        "current-context": "none",
      }),
    );
    const line = await start(
      join(dir, "control-plane", "operator.mjs"),
      { KUBECONFIG_PATH: kubeconfig, METRICS_PORT: "0", METRICS_HOST: "127.0.0.1", NATS_URL: "nats://127.0.0.1:1" },
      (l) => l.msg === "http listening",
    );
    const url = `http://127.0.0.1:${line.port}`;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain("# TYPE controller_runtime_reconcile_total counter");
    expect(await checkMetrics(metrics)).toEqual([]);
  });
});

describe("in-cluster test world", () => {
  let ports: { github: number; anthropic: number; control: number };
  beforeAll(async () => {
    const line = await start(
      join(dir, "world", "world.mjs"),
      {
        HOST: "127.0.0.1",
        GITHUB_PORT: "0",
        ANTHROPIC_PORT: "0",
        CONTROL_PORT: "0",
        HOME: dir,
        TMPDIR: dir,
        PUBLIC_GITHUB_URL: "http://github.world.svc",
      },
      (l) => l.msg === "world listening",
    );
    ports = line as unknown as typeof ports;
  });

  it("hands out the App credentials and drives the GitHub simulator through the control API", async () => {
    const control = `http://127.0.0.1:${ports.control}`;
    const info = (await (await fetch(`${control}/info`)).json()) as {
      github: { privateKeyPem: string; apiUrl: string };
    };
    expect(info.github.privateKeyPem).toContain("PRIVATE KEY");
    expect(info.github.apiUrl).toBe("http://github.world.svc/api/v3");
    const created = await fetch(`${control}/github/createRepo`, {
      method: "POST",
      body: JSON.stringify(["acme/shop", { "README.md": "# shop\n" }]),
    });
    expect(created.status).toBe(200);
    const issue = (await (
      await fetch(`${control}/github/createIssue`, {
        method: "POST",
        body: JSON.stringify(["acme/shop", { title: "Add a buy button", user: "alice", labels: ["ai-agent"] }]),
      })
    ).json()) as { number: number };
    expect(issue.number).toBeGreaterThan(0);
    const missing = await fetch(`${control}/github/noSuchMethod`, { method: "POST", body: "[]" });
    expect(missing.status).toBe(404);
  });

  it("serves the REST API and git through its proxy on the cluster-facing port", async () => {
    const github = `http://127.0.0.1:${ports.github}`;
    const token = (await (
      await fetch(`http://127.0.0.1:${ports.control}/github/mintToken`, { method: "POST", body: '["acme/shop"]' })
    ).json()) as string;
    const response = await fetch(`${github}/api/v3/repos/acme/shop`, { headers: { authorization: `token ${token}` } });
    const repo = (await response.json()) as { full_name: string; clone_url: string };
    expect(repo.full_name).toBe("acme/shop");
    // The simulator's loopback URL is rewritten to the one pods use.
    expect(repo.clone_url).toBe("http://github.world.svc/acme/shop.git");
    const { stdout } = await exec(
      "git",
      ["ls-remote", `http://x-access-token:${token}@127.0.0.1:${ports.github}/acme/shop.git`],
      {
        env: { ...process.env, GIT_TERMINAL_PROMPT: "0" },
      },
    );
    expect(stdout).toMatch(/^[0-9a-f]{40}\s+HEAD$/m);
  });

  it("plays the scripted model through its proxy", async () => {
    const response = await fetch(`http://127.0.0.1:${ports.anthropic}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": "sk-test", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({
        model: "claude-sonnet-4-5",
        max_tokens: 256,
        system: "AgentFactory stage: triage\nYou triage tickets.",
        messages: [{ role: "user", content: "Ticket: add a buy button" }],
        tools: [
          { name: "triage_verdict", description: "Report the triage verdict.", input_schema: { type: "object" } },
        ],
      }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      content: { type: string; name?: string; input?: { verdict?: string } }[];
    };
    expect(body.content[0]).toMatchObject({ type: "tool_use", name: "triage_verdict", input: { verdict: "unclear" } });
  });
});

describe("kind manifests", () => {
  it("world.yaml validates and its pods meet Pod Security restricted", async () => {
    const objects = parseAllDocuments(await readFile(join(KIND_DIR, "world.yaml"), "utf8")).map(
      (d) => d.toJS() as K8sObject,
    );
    expect(objects.map((o) => o.kind)).toEqual(["Namespace", "Deployment", "Service", "Service"]);
    for (const object of objects) await validateObject(object);
    const deployment = objects[1]!;
    expect(restrictedViolations(deployment.spec.template.spec)).toEqual([]);
    expect(objects[0]!.metadata.labels?.["pod-security.kubernetes.io/enforce"]).toBe("restricted");
  });

  it("run.sh and build-images.sh are valid bash", async () => {
    for (const script of ["run.sh", "build-images.sh"]) await exec("bash", ["-n", join(KIND_DIR, script)]);
    const run = await readFile(join(KIND_DIR, "run.sh"), "utf8");
    expect(run).toContain("pod-security.kubernetes.io/enforce=restricted");
    expect(run).toContain('--values "$here/values.yaml"');
  });
});

/**
 * Smoke suite for `make e2e-kind` (run.sh sets the environment): the chart installed on kind with
 * Pod Security "restricted" enforced, a signed GitHub webhook through the real gateway, NATS and
 * operator into an AgentRun, a runner Job, and the dashboards fed by a Prometheus scraping the
 * operator and the gateway. Runs only from run.sh (vitest.config.ts here); never in `make test`.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  assertDashboardsHaveData,
  type RunningPrometheus,
  startPrometheus,
  waitForScrapes,
} from "../chart/prometheus.ts";
import { issuesLabeled, signGithubWebhook } from "../world/github/webhooks.ts";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this suite through make e2e-kind (test/e2e-kind/run.sh)`);
  return value;
};
const NS = env("E2E_NAMESPACE");
const RELEASE = env("E2E_RELEASE");
const exec = promisify(execFile);

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await exec(env("E2E_KUBECTL"), ["--kubeconfig", env("KUBECONFIG"), ...args], {
    maxBuffer: 32 * 1024 * 1024,
  });
  return stdout;
}

async function world<T>(method: string, ...args: unknown[]): Promise<T> {
  const response = await fetch(`${env("E2E_WORLD_URL")}/github/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(args),
  });
  if (!response.ok) throw new Error(`world ${method}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
}

interface AgentRunJson {
  metadata: { name: string };
  spec: { ticket: { repo: string; number: number } };
  status?: { phase?: string; stages?: { name: string; jobName: string }[] };
}

describe("the chart on kind", () => {
  it("runs every pod Ready in a namespace that enforces Pod Security restricted", async () => {
    const labels = JSON.parse(await kubectl("get", "namespace", NS, "-o", "json")).metadata.labels;
    expect(labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
    const pods = JSON.parse(await kubectl("-n", NS, "get", "pods", "-o", "json")).items as {
      metadata: { name: string };
      status: { conditions?: { type: string; status: string }[] };
    }[];
    expect(pods.length).toBeGreaterThanOrEqual(4);
    for (const pod of pods.filter((p) => !p.metadata.name.includes("-runner-")))
      expect(pod.status.conditions?.find((c) => c.type === "Ready")?.status, pod.metadata.name).toBe("True");
  });

  it("rejects a privileged pod in that namespace (admission, not just the chart)", async () => {
    const pod = JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "privileged-probe" },
      spec: { containers: [{ name: "c", image: "busybox", securityContext: { privileged: true } }] },
    });
    const attempt = new Promise<string>((resolve, reject) => {
      const child = execFile(
        env("E2E_KUBECTL"),
        ["--kubeconfig", env("KUBECONFIG"), "-n", NS, "create", "--dry-run=server", "-f", "-"],
        (error, stdout, stderr) => (error ? reject(new Error(`${stderr}${error.message}`)) : resolve(stdout)),
      );
      child.stdin?.end(pod);
    });
    await expect(attempt).rejects.toThrow(/violates PodSecurity "restricted/);
  });

  it("serves the AgentRun API with its printer columns", async () => {
    const table = await kubectl("-n", NS, "get", "agentruns");
    expect(table).toMatch(/No resources found|REPO\s+TICKET\s+PHASE/);
  });
});

describe("a labelled issue becomes an AgentRun with a runner Job", () => {
  const repo = "acme/shop";
  let run: AgentRunJson;

  beforeAll(async () => {
    const info = (await (await fetch(`${env("E2E_WORLD_URL")}/info`)).json()) as {
      github: { installationId: number; serverUrl: string };
    };
    await world("createRepo", repo, { "README.md": "# shop\n", "package.json": '{"name":"shop"}\n' });
    const issue = await world<{ number: number; title: string; body: string }>("createIssue", repo, {
      title: "Add a buy button",
      body: "Put a buy button on the product page.",
      user: "alice",
      labels: ["ai-agent"],
    });
    const body = JSON.stringify(
      issuesLabeled(
        { repo, installationId: info.github.installationId, sender: "alice", serverUrl: info.github.serverUrl },
        issue,
        "ai-agent",
      ),
    );
    const response = await fetch(`${env("E2E_GATEWAY_URL")}/webhooks/github`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": "issues",
        "x-github-delivery": crypto.randomUUID(),
        "x-hub-signature-256": signGithubWebhook(env("E2E_GITHUB_WEBHOOK_SECRET"), body),
      },
      body,
    });
    expect(response.status).toBe(202);
    run = await eventually("the AgentRun", async () => {
      const items = JSON.parse(await kubectl("-n", NS, "get", "agentruns", "-o", "json")).items as AgentRunJson[];
      return items.find((r) => r.spec.ticket.repo === repo && r.spec.ticket.number === issue.number);
    });
  });

  it("creates the triage Job, whose pod runs under the runner NetworkPolicy", async () => {
    const jobName = await eventually("a triage Job", async () => {
      const current = JSON.parse(
        await kubectl("-n", NS, "get", "agentrun", run.metadata.name, "-o", "json"),
      ) as AgentRunJson;
      return current.status?.stages?.find((s) => s.name === "triage")?.jobName;
    });
    const job = JSON.parse(await kubectl("-n", NS, "get", "job", jobName, "-o", "json"));
    expect(job.spec.template.spec.automountServiceAccountToken).toBe(false);
    expect(job.spec.template.metadata.labels["agentfactory.dev/run"]).toBe(run.metadata.name);
    const policy = JSON.parse(await kubectl("-n", NS, "get", "networkpolicy", `${RELEASE}-runner`, "-o", "json"));
    expect(policy.spec.podSelector.matchExpressions[0].key).toBe("agentfactory.dev/run");
  });

  it("moves the run past triage", async () => {
    const phase = await eventually("a phase after triage", async () => {
      const current = JSON.parse(
        await kubectl("-n", NS, "get", "agentrun", run.metadata.name, "-o", "json"),
      ) as AgentRunJson;
      const p = current.status?.phase;
      return p && !["Pending", "Triaging"].includes(p) ? p : undefined;
    });
    expect(["AwaitingReply", "Writing", "Reviewing", "Remediating", "Ready", "Escalated"]).toContain(phase);
  });
});

describe("dashboards", () => {
  let prometheus: RunningPrometheus | undefined;
  beforeAll(async () => {
    prometheus = await startPrometheus(
      [
        { job: `${RELEASE}-operator-metrics`, url: env("E2E_OPERATOR_METRICS_URL"), labels: { namespace: NS } },
        { job: `${RELEASE}-gateway`, url: env("E2E_GATEWAY_METRICS_URL"), labels: { namespace: NS } },
      ],
      { scrapeInterval: "2s" },
    );
    await waitForScrapes(prometheus.url, [`${RELEASE}-operator-metrics`, `${RELEASE}-gateway`], 3, 60_000);
  });
  afterAll(async () => {
    await prometheus?.stop();
  });

  it("every panel's query returns data from the real operator and gateway", async () => {
    await assertDashboardsHaveData(prometheus!.url, { range: "1h", rateInterval: "5m" });
  });
});

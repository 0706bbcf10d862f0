import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentRun, job } from "./fixtures.ts";
import { type KubeSim, REPO_ROOT, startKubeSim } from "./index.ts";

// biome-ignore lint/suspicious/noExplicitAny: tests read untyped objects
type Obj = Record<string, any>;
const KUBECTL = join(REPO_ROOT, ".cache/bin/kubectl");
const NS = "agentfactory";
let sim: KubeSim;
let dir: string;

beforeAll(async () => {
  if (!existsSync(KUBECTL)) throw new Error(`kubectl not found at ${KUBECTL}: run make deps`);
  dir = await mkdtemp(join(tmpdir(), "kubectl-test-"));
  sim = await startKubeSim();

  const run = sim.create("agentruns", agentRun("gh-acme-widgets-42")) as Obj;
  sim.patchStatus("agentruns", NS, "gh-acme-widgets-42", {
    phase: "Reviewing",
    round: 1,
    costUsd: 1.25,
    pullRequest: {
      number: 7,
      url: "https://github.com/acme/widgets/pull/7",
      branch: "agent/42-add-a-widget",
      headSha: "abc",
    },
  });
  sim.create("agentruns", agentRun("gh-acme-widgets-43"));
  sim.create("events", {
    metadata: { name: "gh-acme-widgets-42.1" },
    involvedObject: {
      apiVersion: "agentfactory.dev/v1alpha1",
      kind: "AgentRun",
      name: "gh-acme-widgets-42",
      namespace: NS,
      uid: run.metadata.uid,
    },
    reason: "StageSucceeded",
    message: "write succeeded: PR #7 opened",
    type: "Normal",
    source: { component: "agentfactory-operator" },
    firstTimestamp: new Date().toISOString(),
    lastTimestamp: new Date().toISOString(),
    count: 1,
  });
  const j = sim.create("jobs", job("gh-acme-widgets-42-write-1")) as Obj;
  sim.create("pods", {
    metadata: {
      name: "gh-acme-widgets-42-write-1-x7k2p",
      labels: { "job-name": "gh-acme-widgets-42-write-1" },
      ownerReferences: [
        { apiVersion: "batch/v1", kind: "Job", name: j.metadata.name, uid: j.metadata.uid, controller: true },
      ],
    },
    spec: { containers: [{ name: "runner", image: "localhost/agentfactory-runner:dev" }] },
  });
});
afterAll(async () => {
  await sim?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function kubectl(...args: string[]): Promise<string> {
  return (await kubectlAll(...args)).stdout;
}

async function kubectlAll(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return await promisify(execFile)(
    KUBECTL,
    ["--kubeconfig", sim.kubeconfigPath, "--cache-dir", join(dir, "cache"), ...args],
    {
      encoding: "utf8",
    },
  );
}

async function kubectlError(...args: string[]): Promise<string> {
  try {
    await kubectl(...args);
  } catch (e) {
    return String((e as { stderr?: string }).stderr);
  }
  throw new Error(`kubectl ${args.join(" ")} unexpectedly succeeded`);
}

function table(text: string): string[][] {
  return text
    .trim()
    .split("\n")
    .map((l) => l.split(/\s{2,}/).map((c) => c.trim()));
}

describe("real kubectl against the simulator", () => {
  it("get agentruns prints the CRD's printer columns", async () => {
    const rows = table(await kubectl("get", "agentruns"));
    expect(rows[0]).toEqual(["NAME", "REPO", "TICKET", "PHASE", "ROUND", "COST", "PR", "AGE"]);
    expect(rows[1]?.slice(0, 7)).toEqual([
      "gh-acme-widgets-42",
      "acme/widgets",
      "acme/widgets#42",
      "Reviewing",
      "1",
      "1.25",
      "https://github.com/acme/widgets/pull/7",
    ]);
    expect(rows[1]?.[7]).toMatch(/^\d+s$/);
    expect(rows[2]?.[0]).toBe("gh-acme-widgets-43");
  });

  it("resolves the short name and category, and evaluates jsonpath and yaml on full objects", async () => {
    expect(await kubectl("get", "ar", "-o", "jsonpath={.items[*].metadata.name}")).toBe(
      "gh-acme-widgets-42 gh-acme-widgets-43",
    );
    expect(
      await kubectl("get", "ar", "gh-acme-widgets-42", "-o", "jsonpath={.status.pullRequest.number} {.spec.budgetUsd}"),
    ).toBe("7 5");
    const yaml = await kubectl("get", "ar", "gh-acme-widgets-43", "-o", "yaml");
    expect(yaml).toContain("kind: AgentRun");
    expect(yaml).toContain("maxRemediationRounds: 2");
    expect(table(await kubectl("get", "agentfactory"))).toHaveLength(3);
  });

  it("describe agentrun shows the object and its events", async () => {
    const out = await kubectl("describe", "agentrun", "gh-acme-widgets-42");
    expect(out).toMatch(/Name:\s+gh-acme-widgets-42/);
    expect(out).toMatch(/Phase:\s+Reviewing/);
    expect(out).toMatch(/Normal\s+StageSucceeded\s+\S+\s+agentfactory-operator\s+write succeeded: PR #7 opened/);
  });

  it("logs prints the container log the kubelet recorded", async () => {
    sim.podLogs.append(NS, "gh-acme-widgets-42-write-1-x7k2p", "line 1\nline 2\n");
    expect(await kubectl("logs", "gh-acme-widgets-42-write-1-x7k2p")).toBe("line 1\nline 2\n");
    expect(await kubectl("logs", "gh-acme-widgets-42-write-1-x7k2p", "--tail", "1")).toBe("line 2\n");
  });

  it("get jobs,pods and get events print the built-in columns", async () => {
    const out = await kubectl("get", "jobs,pods");
    expect(out).toMatch(/NAME\s+STATUS\s+COMPLETIONS\s+DURATION\s+AGE/);
    expect(out).toMatch(/job.batch\/gh-acme-widgets-42-write-1\s+Running\s+0\/1/);
    expect(out).toMatch(/NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE/);
    expect(out).toMatch(/pod\/gh-acme-widgets-42-write-1-x7k2p\s+0\/1\s+Pending\s+0/);
    const events = await kubectl("get", "events");
    expect(events).toMatch(/LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE/);
    expect(events).toMatch(/Normal\s+StageSucceeded\s+agentrun\/gh-acme-widgets-42\s+write succeeded: PR #7 opened/);
  });

  it("apply validates server-side (strict), patches status through the subresource, and deletes", async () => {
    const file = join(dir, "ar.json");
    const bad = agentRun("from-kubectl") as Obj;
    bad.spec.notInSchema = true;
    await writeFile(file, JSON.stringify(bad));
    expect(await kubectlError("apply", "-f", file)).toContain(
      'strict decoding error: unknown field "spec.notInSchema"',
    );
    const warned = await kubectlAll("apply", "--validate=warn", "-f", file);
    expect(warned.stdout).toContain("agentrun.agentfactory.dev/from-kubectl created");
    expect(warned.stderr).toContain('Warning: unknown field "spec.notInSchema"');
    expect((sim.get("agentruns", NS, "from-kubectl") as Obj).spec.notInSchema).toBeUndefined();
    await kubectl(
      "patch",
      "ar",
      "from-kubectl",
      "--subresource",
      "status",
      "--type",
      "merge",
      "-p",
      '{"status":{"phase":"Ready"}}',
    );
    expect((sim.get("agentruns", NS, "from-kubectl") as Obj).status.phase).toBe("Ready");
    const invalid = await kubectlError(
      "patch",
      "ar",
      "from-kubectl",
      "--type",
      "merge",
      "-p",
      '{"spec":{"budgetUsd":-1}}',
    );
    expect(invalid).toContain("spec.budgetUsd");
    expect(await kubectl("delete", "ar", "from-kubectl")).toContain('"from-kubectl" deleted');
    expect(sim.get("agentruns", NS, "from-kubectl")).toBeUndefined();
  });
});

/**
 * crds/agentrun.yaml against the code that produces AgentRuns: runFromTicket() objects and plan()
 * statuses must be accepted by the CRD schema and survive pruning, the printer columns must resolve,
 * and the CRD must describe the same fields as the zod schemas in core/agentrun.ts.
 */
import { readFileSync } from "node:fs";
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import { type AgentRun, AgentRunSpec, AgentRunStatus } from "../../core/agentrun.ts";
import { jobName } from "../../core/names.ts";
import { type ObservedJob, plan } from "../../core/plan.ts";
import { type StageName, StageResult, type StageResultInput } from "../../core/result.ts";
import { runFromTicket } from "../../core/run-from-ticket.ts";
import { Ticket, type TicketInput } from "../../core/ticket.ts";
import { reportedVerification } from "../../core/verify.ts";

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

type Schema = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: JSON documents mutated by the negative cases.
type Loose = any;

const crd = parse(readFileSync(new URL("../../crds/agentrun.yaml", import.meta.url), "utf8"));
const version = crd.spec.versions[0];
const openApi: Schema = version.schema.openAPIV3Schema;

/**
 * Turns a Kubernetes structural schema into JSON Schema for ajv: drops `x-kubernetes-*` keys,
 * maps `nullable` and boolean `exclusiveMinimum/Maximum`, and closes every object that lists its
 * properties (unless it preserves unknown fields) so that a field the API server would prune
 * silently fails validation here.
 */
function toJsonSchema(node: Schema): Schema {
  const out: Schema = {};
  const preserve = node["x-kubernetes-preserve-unknown-fields"] === true;
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith("x-kubernetes-") || key === "nullable") continue;
    if (key === "properties") {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, Schema>).map(([k, v]) => [k, toJsonSchema(v)]),
      );
    } else if (key === "items" || key === "additionalProperties") {
      out[key] = typeof value === "object" ? toJsonSchema(value as Schema) : value;
    } else if (key === "allOf" || key === "anyOf" || key === "oneOf") {
      out[key] = (value as Schema[]).map(toJsonSchema);
    } else if ((key === "exclusiveMinimum" || key === "exclusiveMaximum") && typeof value === "boolean") {
      if (value) out[key] = node[key === "exclusiveMinimum" ? "minimum" : "maximum"];
    } else {
      out[key] = value;
    }
  }
  // OpenAPI 3.0's `exclusiveMinimum: true` qualifies `minimum`; JSON Schema's carries the bound itself.
  if (node.exclusiveMinimum === true) delete out.minimum;
  if (node.exclusiveMaximum === true) delete out.maximum;
  if (node["x-kubernetes-int-or-string"] === true) {
    delete out.type;
    out.anyOf = [{ type: "integer" }, { type: "string" }];
  }
  if (node.nullable === true && typeof out.type === "string") out.type = [out.type, "null"];
  if (out.properties && !preserve && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

function compile(schema: Schema): ValidateFunction {
  const ajv = new Ajv({ strict: true, allErrors: true });
  addFormats(ajv);
  return ajv.compile(toJsonSchema(schema));
}

const validate = compile(openApi);
const errorsOf = (object: unknown): string[] =>
  validate(JSON.parse(JSON.stringify(object)))
    ? []
    : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);

const ticketInput: TicketInput = {
  id: "github:delivery-1",
  source: "github",
  deliveryId: "delivery-1",
  requestId: "req-1",
  receivedAt: "2026-03-01T10:00:00Z",
  repo: "acme/demo",
  number: 7,
  workItem: "gh-7",
  url: "https://github.com/acme/demo/issues/7",
  title: "Add a health endpoint",
  body: "Please add `/healthz`.\n\n<script>alert(1)</script>",
  author: "alice",
  labels: ["ai-agent", "backend"],
  installationId: 12,
};
const defaults = {
  namespace: "agentfactory",
  model: { provider: "anthropic", name: "claude-sonnet-4-6" },
  budgetUsd: 5,
  maxRemediationRounds: 2,
  stageTimeoutSeconds: 1800,
};
const newRun = (over: Partial<TicketInput> = {}): AgentRun =>
  runFromTicket(Ticket.parse({ ...ticketInput, ...over }), defaults);

const result = (stage: StageName, extra: Partial<StageResultInput> = {}): StageResult =>
  StageResult.parse({
    stage,
    outcome: "succeeded",
    summary: `${stage} ok`,
    model: "claude-sonnet-4-6",
    costUsd: 0.2,
    turns: 12,
    durationMs: 61_000,
    usage: { input: 900, output: 120, cacheRead: 4000, cacheWrite: 100 },
    ...extra,
  });

/**
 * Drives plan() through a long lifecycle (question, reply, a crash, a timeout, two remediation
 * rounds, escalation) and returns every status it wrote.
 */
function lifecycle(): { run: AgentRun; statuses: AgentRun["status"][] } {
  let run = {
    ...newRun(),
    metadata: { ...newRun().metadata, generation: 1, creationTimestamp: "2026-03-01T10:00:00Z" },
  };
  const jobs = new Map<string, ObservedJob>();
  let now = Date.parse("2026-03-01T10:00:00Z");
  const statuses: AgentRun["status"][] = [];
  const step = () => {
    const p = plan(run, [...jobs.values()], new Date(now));
    for (const a of p.actions) {
      if (a.type === "createJob")
        jobs.set(a.jobName, {
          name: a.jobName,
          stage: a.stage,
          attempt: a.attempt,
          state: "Active",
          startTime: new Date(now).toISOString(),
        });
      if (a.type === "deleteJob") jobs.delete(a.jobName);
    }
    run = { ...run, status: JSON.parse(JSON.stringify(p.status)) };
    statuses.push(run.status);
  };
  const end = (r: StageResult | string, seconds = 60) => {
    now += seconds * 1000;
    const active = [...jobs.values()].find((j) => j.state === "Active")!;
    Object.assign(
      active,
      typeof r === "string"
        ? { state: "Failed", infraError: r, completionTime: new Date(now).toISOString() }
        : {
            state: "Succeeded",
            result: r,
            completionTime: new Date(now).toISOString(),
            // What the operator checks on the forge (here: the pod's figures, as without the App).
            ...(r.stage !== "triage" ? { verification: reportedVerification(run.spec.ticket, r, run.status) } : {}),
          },
    );
  };
  const blocking = result("review", {
    review: { riskTier: "high", checks: { gate: "success", tests: "failure" }, findings: { total: 2, blocking: 1 } },
  });

  step();
  end(result("triage", { triage: { verdict: "unclear", question: "Which port?", defaultAssumption: "8080" } }));
  step();
  now += 3600_000;
  run = {
    ...run,
    metadata: { ...run.metadata, generation: 2 },
    spec: { ...run.spec, clarifications: [{ author: "alice", body: "9090", at: new Date(now).toISOString() }] },
  };
  step();
  end(result("triage", { triage: { verdict: "clear", riskTier: "medium" } }));
  step();
  end("OOMKilled");
  step();
  now += 10_000;
  step();
  end(
    result("write", {
      write: {
        prNumber: 42,
        prUrl: "https://github.com/acme/demo/pull/42",
        branch: "agent/7-add-a-health-endpoint",
        headSha: "a1",
      },
    }),
  );
  step();
  now += 1800_000; // review times out
  step();
  now += 10_000;
  step();
  end(blocking);
  step();
  end(result("remediate", { remediate: { headSha: "b2" } }));
  step();
  end(blocking);
  step();
  end(result("remediate", { remediate: { headSha: "c3" } }));
  step();
  end(blocking);
  step();
  return { run, statuses };
}

describe("crds/agentrun.yaml", () => {
  it("describes agentruns.agentfactory.dev v1alpha1 with a status subresource", () => {
    expect(crd.metadata.name).toBe("agentruns.agentfactory.dev");
    expect(crd.spec.names).toMatchObject({ kind: "AgentRun", plural: "agentruns", shortNames: ["ar"] });
    expect(crd.spec.scope).toBe("Namespaced");
    expect(version).toMatchObject({ name: "v1alpha1", served: true, storage: true, subresources: { status: {} } });
  });

  it.each([
    ["a GitHub issue", {}],
    ["a ClickUp task without a number", { source: "clickup", number: 0, workItem: "86c2abc", id: "clickup:e-1" }],
    ["a manual dispatch without installation", { source: "dispatch", id: "dispatch:x1", installationId: undefined }],
  ] as const)("accepts the AgentRun runFromTicket() makes for %s", (_, over) => {
    expect(errorsOf(newRun(over))).toEqual([]);
  });

  it("accepts every status plan() writes over a whole lifecycle", () => {
    const { run, statuses } = lifecycle();
    expect(run.status?.phase).toBe("Escalated");
    expect(statuses).toHaveLength(14);
    expect(run.status?.stages.map((st) => `${st.name}:${st.outcome}`)).toEqual([
      "triage:Succeeded",
      "triage:Succeeded",
      "write:Error",
      "write:Succeeded",
      "review:Error",
      "review:Succeeded",
      "remediate:Succeeded",
      "review:Succeeded",
      "remediate:Succeeded",
      "review:Succeeded",
    ]);
    const phases = new Set(statuses.map((s) => s?.phase));
    expect([...phases].sort()).toEqual([
      "AwaitingReply",
      "Escalated",
      "Remediating",
      "Reviewing",
      "Triaging",
      "Writing",
    ]);
    for (const [i, status] of statuses.entries()) expect(errorsOf({ ...run, status }), `status ${i}`).toEqual([]);
  });

  it.each([
    ["Ready", "Clean"],
    ["Cancelled", "Cancelled"],
  ])("accepts a %s status", (phase) => {
    let run: AgentRun = newRun();
    const p1 = plan(run, [], new Date("2026-03-01T10:00:00Z"));
    run = { ...run, status: p1.status };
    if (phase === "Cancelled") run = { ...run, spec: { ...run.spec, suspend: true } };
    const triage = jobName(run.metadata.name, "triage", 1);
    const p2 = plan(
      run,
      [
        {
          name: triage,
          stage: "triage",
          attempt: 1,
          state: "Active",
          startTime: "2026-03-01T10:00:00.000Z",
        },
      ],
      new Date("2026-03-01T10:01:00Z"),
    );
    expect(p2.status.phase).toBe(phase === "Cancelled" ? "Cancelled" : "Triaging");
    expect(errorsOf({ ...run, status: p2.status })).toEqual([]);
  });

  const good = () => ({ ...newRun(), status: lifecycle().run.status });
  it.each([
    ["a run without spec", (r: Schema) => delete r.spec, "must have required property 'spec'"],
    ["an unknown phase", (r: Loose) => (r.status.phase = "Done"), "/status/phase must be equal to one of"],
    ["a repo that is not owner/name", (r: Loose) => (r.spec.ticket.repo = "demo"), "/spec/ticket/repo must match"],
    ["a ticket without id", (r: Loose) => delete r.spec.ticket.id, "/spec/ticket must have required property 'id'"],
    ["a negative round", (r: Loose) => (r.status.round = -1), "/status/round must be >= 0"],
    [
      "a fractional attempt",
      (r: Loose) => (r.status.stages[0].attempt = 1.5),
      "/status/stages/0/attempt must be integer",
    ],
    ["an unknown stage outcome", (r: Loose) => (r.status.stages[0].outcome = "Crashed"), "must be equal to one of"],
    ["a non-date transition time", (r: Loose) => (r.status.conditions[0].lastTransitionTime = "yesterday"), "format"],
    ["a negative cost", (r: Loose) => (r.status.costUsd = -0.01), "/status/costUsd must be >= 0"],
    ["too many rounds", (r: Loose) => (r.spec.maxRemediationRounds = 6), "must be <= 5"],
    ["a status field the API server would prune", (r: Loose) => (r.status.notInSchema = 1), "additional properties"],
  ])("rejects %s", (_, mutate, message) => {
    const run = JSON.parse(JSON.stringify(good()));
    expect(errorsOf(run)).toEqual([]);
    mutate(run);
    expect(errorsOf(run).join("\n")).toContain(message);
  });
});

describe("printer columns", () => {
  const columns: { name: string; type: string; jsonPath: string }[] = version.additionalPrinterColumns;

  /** kubectl's JSONPath for the simple `.a.b.c` paths printer columns use. */
  function resolve(object: unknown, path: string): unknown {
    expect(path).toMatch(/^(\.[A-Za-z][A-Za-z0-9]*)+$/);
    return path
      .slice(1)
      .split(".")
      .reduce<unknown>(
        (at, k) => (at && typeof at === "object" ? (at as Record<string, unknown>)[k] : undefined),
        object,
      );
  }

  it("are REPO, TICKET, PHASE, ROUND, COST, PR, AGE in that order", () => {
    expect(columns.map((c) => c.name.toUpperCase())).toEqual(["REPO", "TICKET", "PHASE", "ROUND", "COST", "PR", "AGE"]);
  });

  it("all resolve on a run with a full status, to values of their declared type", () => {
    const { run } = lifecycle();
    const values = Object.fromEntries(columns.map((c) => [c.name.toUpperCase(), resolve(run, c.jsonPath)]));
    expect(values).toEqual({
      REPO: "acme/demo",
      TICKET: "gh-7",
      PHASE: "Escalated",
      ROUND: 2,
      COST: run.status?.costUsd,
      PR: "https://github.com/acme/demo/pull/42",
      AGE: "2026-03-01T10:00:00Z",
    });
    for (const c of columns) {
      const v = values[c.name.toUpperCase()];
      const ok = {
        string: typeof v === "string",
        integer: Number.isInteger(v),
        number: typeof v === "number",
        date: typeof v === "string" && !Number.isNaN(Date.parse(v as string)),
      }[c.type];
      expect(ok, `${c.name} is a ${c.type}`).toBe(true);
    }
    expect(values.COST).toBeGreaterThan(0);
  });
});

describe("the CRD and the zod schemas agree", () => {
  const crdSpec = (openApi.properties as Record<string, Schema>).spec!;
  const crdStatus = (openApi.properties as Record<string, Schema>).status!;

  /** Walks both schemas at once and lists every difference in properties, enums, types and defaults. */
  function diff(zIn: Schema, zOut: Schema, k8s: Schema, path: string, out: string[]): string[] {
    const zType = zIn.type;
    if (zType !== k8s.type) out.push(`${path}: type ${String(zType)} (zod) vs ${String(k8s.type)} (CRD)`);
    if (zIn.enum || k8s.enum) {
      const a = [...((zIn.enum as string[]) ?? [])].sort();
      const b = [...((k8s.enum as string[]) ?? [])].sort();
      if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${path}: enum ${a} (zod) vs ${b} (CRD)`);
    }
    if ("default" in k8s && JSON.stringify(k8s.default) !== JSON.stringify(zIn.default))
      out.push(`${path}: default ${JSON.stringify(zIn.default)} (zod) vs ${JSON.stringify(k8s.default)} (CRD)`);
    if (zIn.properties || k8s.properties) {
      const zp = (zIn.properties ?? {}) as Record<string, Schema>;
      const zpOut = (zOut.properties ?? {}) as Record<string, Schema>;
      const kp = (k8s.properties ?? {}) as Record<string, Schema>;
      for (const name of Object.keys(zp)) if (!(name in kp)) out.push(`${path}.${name}: missing in the CRD`);
      for (const name of Object.keys(kp)) if (!(name in zp)) out.push(`${path}.${name}: missing in zod`);
      for (const name of Object.keys(zp))
        if (kp[name]) diff(zp[name]!, zpOut[name] ?? zp[name]!, kp[name]!, `${path}.${name}`, out);
      // What zod demands on input the API server must demand; what the CRD demands zod must always produce.
      const kRequired = new Set((k8s.required as string[]) ?? []);
      for (const name of (zIn.required as string[]) ?? [])
        if (!kRequired.has(name)) out.push(`${path}.${name}: required by zod, optional in the CRD`);
      const zOutRequired = new Set((zOut.required as string[]) ?? []);
      for (const name of kRequired)
        if (!zOutRequired.has(name)) out.push(`${path}.${name}: required by the CRD, optional in zod`);
    }
    if (zIn.items || k8s.items)
      diff(
        (zIn.items ?? {}) as Schema,
        (zOut.items ?? zIn.items ?? {}) as Schema,
        (k8s.items ?? {}) as Schema,
        `${path}[]`,
        out,
      );
    return out;
  }

  it.each([
    ["spec", AgentRunSpec, crdSpec],
    ["status", AgentRunStatus, crdStatus],
  ] as const)("%s: same properties, required fields, enums, types and defaults", (name, schema, k8s) => {
    const zIn = z.toJSONSchema(schema, { io: "input" }) as Schema;
    const zOut = z.toJSONSchema(schema, { io: "output" }) as Schema;
    expect(diff(zIn, zOut, k8s, name, [])).toEqual([]);
  });

  it("the walk notices a missing property and a changed enum", () => {
    const broken = structuredClone(crdStatus) as Loose;
    delete broken.properties.questions;
    broken.properties.phase.enum.pop();
    const zIn = z.toJSONSchema(AgentRunStatus, { io: "input" }) as Schema;
    const found = diff(zIn, zIn, broken, "status", []);
    expect(found).toContain("status.questions: missing in the CRD");
    expect(found.some((f) => f.startsWith("status.phase: enum"))).toBe(true);
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRun } from "../../core/agentrun.ts";
import { LABELS, runName } from "../../core/names.ts";
import { OutcomeRecord } from "../../core/outcome.ts";
import { exportOutcomes } from "../../operator/outcomes-cli.ts";
import { cleanScript, type Harness, NS, ok, type Script, startHarness } from "./harness.ts";

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
  h.startOperator();
  await h.waitFor("operator http", () => h.operator?.logs.some((l) => l.includes("ticket consumer started")));
});
afterAll(async () => {
  await h?.stop();
});

const terminal = (name: string) => () => {
  const r = h.run(name);
  return r &&
    ["Ready", "Escalated", "Failed", "Cancelled"].includes(r.status?.phase ?? "") &&
    r.status?.conditions.some((c) => c.type === "Finalized" && c.status === "True")
    ? r
    : undefined;
};

/** Per-work-item scripts, so the tests of this file can share one operator. */
const scripts = new Map<string, Script>();
function script(number: number, s: Script) {
  scripts.set(String(number), s);
}

beforeAll(() => {
  h.setScript((job) => {
    const run = h.run(job.run);
    const s = scripts.get(String(run?.spec.ticket.number)) ?? cleanScript();
    return s(job);
  });
});

const stagesOf = (r: AgentRun) => r.status!.stages.map((s) => `${s.name}-${s.attempt}:${s.outcome}`);

describe("operator against the API simulator", () => {
  it("takes a ticket to Ready; the redelivered ticket creates nothing", async () => {
    const t = await h.publish({ number: 11, workItem: "gh-11", deliveryId: "clean-1" });
    const name = runName(t);
    const run = await h.waitFor("Ready", terminal(name));
    expect(run.status!.phase).toBe("Ready");
    expect(stagesOf(run)).toEqual(["triage-1:Succeeded", "write-1:Succeeded", "review-1:Succeeded"]);
    expect(run.status!.pullRequest?.number).toBe(4);
    expect(run.status!.observedGeneration).toBe(run.metadata.generation);
    expect(
      h
        .jobs(name)
        .map((j) => j.metadata.name)
        .sort(),
    ).toEqual([`${name}-review-1`, `${name}-triage-1`, `${name}-write-1`].sort());
    // Jobs are owned by the run and run without a service account token.
    for (const j of h.jobs(name)) {
      expect(j.metadata.ownerReferences[0]).toMatchObject({ kind: "AgentRun", name, controller: true });
      expect(j.spec.template.spec.automountServiceAccountToken).toBe(false);
    }
    // A per-stage Secret holds the token; the Job references it.
    expect(h.sim.get("secrets", NS, `${name}-triage-1`)).toBeDefined();

    await h.publish({ number: 11, workItem: "gh-11", deliveryId: "clean-1" }); // JetStream dedups
    await h.publish({ number: 11, workItem: "gh-11", deliveryId: "clean-1", receivedAt: new Date().toISOString() });
    await new Promise((r) => setTimeout(r, 500));
    expect(h.runs().filter((r) => r.spec.ticket.number === 11)).toHaveLength(1);

    const events = (h.sim.list("events", NS) as { involvedObject?: { name?: string }; reason?: string }[])
      .filter((e) => e.involvedObject?.name === name)
      .map((e) => e.reason);
    expect(events).toEqual(
      expect.arrayContaining(["StageStarted", "StageSucceeded", "PhaseChanged", "Clean", "Finalized"]),
    );

    const port = await h.operator!.port;
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/agentfactory_runs_total\{outcome="clean",risk_tier="low"\} [1-9]/);
    expect(metrics).toMatch(/controller_runtime_reconcile_total\{controller="agentrun",result="success"\} [1-9]/);
    expect(metrics).toMatch(/agentfactory_ticket_to_job_seconds_count [1-9]/);
    expect(metrics).toContain("workqueue_adds_total");
    expect(await (await fetch(`http://127.0.0.1:${port}/readyz`)).text()).toBe("ok");
    expect(h.sim.get("leases", NS, "agentfactory-operator")).toBeDefined();
  });

  it("findings → remediation → Ready, and findings twice → Escalated", async () => {
    script(12, cleanScript([2, 0]));
    script(13, cleanScript([2, 1, 1]));
    const a = runName(await h.publish({ number: 12, workItem: "gh-12" }));
    const b = runName(await h.publish({ number: 13, workItem: "gh-13" }));
    const ra = await h.waitFor("remediated run", terminal(a));
    expect(ra.status!.phase).toBe("Ready");
    expect(ra.status!.round).toBe(1);
    expect(stagesOf(ra)).toEqual([
      "triage-1:Succeeded",
      "write-1:Succeeded",
      "review-1:Succeeded",
      "remediate-1:Succeeded",
      "review-2:Succeeded",
    ]);
    const rb = await h.waitFor("escalated run", terminal(b));
    expect(rb.status!.phase).toBe("Escalated");
    expect(rb.status!.round).toBe(2);
    expect(rb.status!.conditions.find((c) => c.type === "Succeeded")?.reason).toBe("RemediationLimit");
  });

  it("an unclear ticket waits for the reply, then re-triages with it and finishes", async () => {
    script(14, (job) => {
      if (job.stage !== "triage") return cleanScript()(job);
      const ctx = JSON.parse(job.env.AGENTFACTORY_CONTEXT!) as { clarifications: unknown[] };
      return ctx.clarifications.length === 0
        ? ok("triage", { triage: { verdict: "unclear", question: "Which port?", defaultAssumption: "8080" } })
        : ok("triage", { triage: { verdict: "clear" } });
    });
    const name = runName(await h.publish({ number: 14, workItem: "gh-14" }));
    await h.waitFor("AwaitingReply", () => h.run(name)?.status?.phase === "AwaitingReply");
    expect(h.run(name)!.status!.questions).toBe(1);
    await h.publish({ number: 14, workItem: "gh-14", kind: "reply", comment: "Use 9090", author: "alice" });
    const run = await h.waitFor("Ready after reply", terminal(name));
    expect(run.status!.phase).toBe("Ready");
    expect(run.spec.clarifications).toEqual([expect.objectContaining({ body: "Use 9090", author: "alice" })]);
    expect(stagesOf(run).slice(0, 2)).toEqual(["triage-1:Succeeded", "triage-2:Succeeded"]);
  });

  it("a cancel ticket stops a run mid-stage and deletes its Job", async () => {
    script(15, () => ({ hang: true }));
    const name = runName(await h.publish({ number: 15, workItem: "gh-15" }));
    await h.waitFor("triage Job", () => h.jobs(name).length === 1);
    await h.publish({ number: 15, workItem: "gh-15", kind: "cancel" });
    const run = await h.waitFor("Cancelled", terminal(name));
    expect(run.status!.phase).toBe("Cancelled");
    expect(run.spec.suspend).toBe(true);
    await h.waitFor("Job deleted", () => h.jobs(name).length === 0);
  });

  it("retries an infrastructure failure (OOM) and then succeeds", async () => {
    script(16, (job) => (job.stage === "write" && job.attempt === 1 ? { infra: "OOMKilled" } : cleanScript()(job)));
    const name = runName(await h.publish({ number: 16, workItem: "gh-16" }));
    const run = await h.waitFor("Ready after retry", terminal(name));
    expect(stagesOf(run)).toEqual(["triage-1:Succeeded", "write-1:Error", "write-2:Succeeded", "review-1:Succeeded"]);
    expect(run.status!.stages[1]!.message).toContain("OOMKilled");
    expect(h.jobs(name).filter((j) => j.metadata.labels[LABELS.stage] === "write")).toHaveLength(2);
  });

  it("publishes an outcome record per finished run and exports them as JSONL", async () => {
    const lines: string[] = [];
    const count = await exportOutcomes({
      natsUrl: h.nats.url,
      auth: h.nats.clientAuth("patterns"),
      write: (l) => void lines.push(l),
    });
    expect(count).toBe(lines.length);
    const records = lines.map((l) => JSON.parse(l));
    const byRun = new Map(records.map((r) => [r.run_id, r]));
    const ready = byRun.get(runName({ id: "dispatch:clean-1", repo: "acme/web", number: 11, workItem: "gh-11" }));
    expect(ready).toMatchObject({
      outcome: "clean",
      phase: "Ready",
      pr_number: 4,
      branch: "agent/11-add-a-health-endpoint",
      risk_tier: "low",
      remediation_rounds: 0,
      provider: "anthropic",
    });
    expect(ready.stages).toHaveLength(3);
    expect(ready.cost_usd).toBeCloseTo(0.03);
    expect(ready.tokens.input).toBe(300);
    expect(records.some((r) => r.outcome === "escalated" && r.remediation_rounds === 2)).toBe(true);
    // core's record shape (the one pattern extraction reads), checks from the last review's result
    for (const r of records) expect(OutcomeRecord.safeParse(r).error).toBeUndefined();
    expect(ready.checks).toEqual({ gate: "skipped", tests: "success", review: "skipped", spec_audit: "skipped" });
    expect(ready.tokens.cache_read).toBe(0);
    expect(records.some((r) => r.outcome === "cancelled")).toBe(true);
    expect(new Set(records.map((r) => `${r.run_id}:${r.phase}`)).size).toBe(records.length); // no duplicates
    const onlyClean: string[] = [];
    await exportOutcomes({
      natsUrl: h.nats.url,
      auth: h.nats.clientAuth("patterns"),
      outcome: "clean",
      write: (l) => void onlyClean.push(l),
    });
    expect(onlyClean.length).toBeGreaterThan(0);
    expect(onlyClean.every((l) => JSON.parse(l).outcome === "clean")).toBe(true);
  });

  it("keeps consuming after a NATS server restart", async () => {
    await h.nats.restart();
    let ticket: Awaited<ReturnType<Harness["publish"]>> | undefined;
    for (let i = 0; i < 60 && !ticket; i++) {
      ticket = await h.publish({ number: 17, workItem: "gh-17", deliveryId: "after-restart" }).catch(() => undefined);
      if (!ticket) await new Promise((r) => setTimeout(r, 250));
    }
    const name = runName(ticket!);
    const run = await h.waitFor("Ready after NATS restart", terminal(name), 60_000);
    expect(run.status!.phase).toBe("Ready");
  });

  it("shuts down gracefully on SIGTERM and hands the lease back", async () => {
    const proc = h.operator!.proc;
    const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
    proc.kill("SIGTERM");
    expect(await exited).toBe(0);
    const lease = h.sim.get("leases", NS, "agentfactory-operator") as { spec: { holderIdentity?: string } };
    expect(lease.spec.holderIdentity ?? "").toBe("");
  });

  it("did all of it as the operator, gateway and patterns NATS users without a permissions violation", () => {
    expect(h.nats.auth).toBe(true);
    expect(h.nats.violations()).toEqual([]);
  });
});

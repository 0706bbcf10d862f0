import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRun } from "../../core/agentrun.ts";
import { runName } from "../../core/names.ts";
import { cleanScript, type Harness, ok, startHarness } from "./harness.ts";

/**
 * SIGKILL the operator at random points while runs are in flight, 20 times, then let it finish.
 * Every run must reach its terminal phase with exactly one Job per stage attempt and no attempt
 * lost or duplicated, and one run per ticket.
 */
let h: Harness;
const KILLS = 20;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

// Deterministic pseudo-random points, so a failure can be replayed.
let seed = 20_261_124;
const random = () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
  return seed / 2 ** 31;
};

describe("crash safety", () => {
  it(`survives ${KILLS} SIGKILLs at random points`, async () => {
    // Ten tickets, published while the operator is being killed: clean, one and two rounds of
    // findings, escalation, and (24) a question answered while the operator is down.
    const blocking = new Map<number, number[]>([
      [21, [0]],
      [22, [1, 0]],
      [23, [1, 1, 1]],
      [24, [0]],
      [25, [2, 0]],
      [26, [0]],
      [27, [1, 1, 1]],
      [28, [1, 0]],
      [29, [0]],
      [30, [3, 2, 0]],
    ]);
    h.setStageDelay(() => 200 + Math.floor(random() * 800));
    h.setScript((job) => {
      const run = h.run(job.run)!;
      const n = run.spec.ticket.number;
      if (n === 24 && job.stage === "triage") {
        const ctx = JSON.parse(job.env.AGENTFACTORY_CONTEXT!) as { clarifications: unknown[] };
        if (ctx.clarifications.length === 0)
          return ok("triage", { triage: { verdict: "unclear", question: "Which port?", defaultAssumption: "8080" } });
      }
      return cleanScript(blocking.get(n))(job);
    });
    const env = { POD_NAME: "agentfactory-operator-0", LOG_LEVEL: "info" };
    h.startOperator(env);
    const numbers = [...blocking.keys()];
    const names = numbers.map((n) =>
      runName({ id: `dispatch:crash-${n}`, repo: "acme/web", number: n, workItem: `gh-${n}` }),
    );
    const publish = (n: number) => h.publish({ number: n, workItem: `gh-${n}`, deliveryId: `crash-${n}` });
    await publish(numbers[0]!);
    let replied = false;
    let midRun = 0;
    for (let i = 0; i < KILLS; i++) {
      if (i % 2 === 1 && numbers[(i + 1) / 2]) await publish(numbers[(i + 1) / 2]!);
      // Mostly after the operator started working, sometimes during its start-up.
      if (random() > 0.2)
        await h.waitFor(
          "operator started",
          () => h.operator?.logs.some((l) => l.includes("controller started")),
          30_000,
        );
      await new Promise((r) => setTimeout(r, Math.floor(random() * 1500)));
      const busy = h.runs().some((r) => !r.status?.conditions.some((c) => c.type === "Finalized"));
      if (busy) midRun += 1;
      await h.killOperator("SIGKILL");
      if (!replied && h.run(names[3]!)?.status?.phase === "AwaitingReply") {
        // The reply arrives while the operator is down: it waits in the stream.
        await h.publish({ number: 24, workItem: "gh-24", kind: "reply", comment: "9090" });
        replied = true;
      }
      h.startOperator(env);
    }
    if (!replied) {
      await h.waitFor("question", () => h.run(names[3]!)?.status?.phase === "AwaitingReply", 60_000);
      await h.publish({ number: 24, workItem: "gh-24", kind: "reply", comment: "9090" });
    }
    const done = (r: AgentRun | undefined) =>
      !!r && r.status?.conditions.some((c) => c.type === "Finalized" && c.status === "True");
    await h.waitFor("all runs finalized", () => names.every((n) => done(h.run(n))), 120_000);

    const expected: Record<string, string> = Object.fromEntries(
      numbers.map((n, i) => [i, n === 23 || n === 27 ? "Escalated" : "Ready"]),
    );
    for (const [i, name] of names.entries()) {
      const run = h.run(name)!;
      expect(run.status!.phase, name).toBe(expected[i]);
      const jobs = h
        .jobs(name)
        .map((j) => j.metadata.name as string)
        .sort();
      const stages = run.status!.stages;
      // Exactly one Job per stage attempt: the Jobs are exactly the attempts in status, none failed.
      expect(jobs).toEqual(stages.map((s) => s.jobName).sort());
      expect(
        stages.every((s) => s.outcome === "Succeeded"),
        JSON.stringify(stages),
      ).toBe(true);
      const attempts = stages.map((s) => `${s.name}-${s.attempt}`);
      expect(new Set(attempts).size).toBe(attempts.length);
    }
    expect(midRun).toBeGreaterThanOrEqual(KILLS / 2); // the kills really hit runs in flight
    expect(h.runs()).toHaveLength(names.length); // one run per ticket, redeliveries created nothing
    expect(h.run(names[3]!)!.spec.clarifications).toHaveLength(1);
  }, 240_000);
});

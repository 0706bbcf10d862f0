import type { V1Job, V1Pod, V1Secret } from "@kubernetes/client-node";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { AgentRun, AgentRunStatus } from "../core/agentrun.ts";
import { DEFAULT_PLAN_OPTIONS } from "../core/plan.ts";
import type { StageResultInput } from "../core/result.ts";
import { ATTEMPT_TOKEN_KEY } from "./job.ts";
import { Reconciler, StaleError, sameStatus } from "./reconciler.ts";
import { agentRun, finishedJob, SETTINGS } from "./testing.ts";

class MapCache<T extends { metadata?: { name?: string; namespace?: string } }> {
  items = new Map<string, T>();
  get(name: string) {
    return this.items.get(name);
  }
  list() {
    return [...this.items.values()];
  }
  put(o: T) {
    this.items.set(o.metadata!.name!, o);
  }
}

class Conflict extends Error {
  code = 409;
}

/** An in-memory cluster: the API writes land in the caches at once (an informer with no lag). */
function world(opts: { failAt?: string } = {}) {
  const runs = new MapCache<AgentRun>();
  const jobs = new MapCache<V1Job>();
  const pods = new MapCache<V1Pod>();
  const secrets = new MapCache<V1Secret>();
  const created: string[] = [];
  const events: string[] = [];
  let rv = 10;
  let fail = opts.failAt;
  /** The API server's copy of the runs; the cache follows it unless `lag` is set. */
  const server = new Map<string, AgentRun>();
  const sync = { lag: false };
  const maybeFail = (step: string) => {
    if (fail === step) {
      fail = undefined;
      throw new Error(`crash at ${step}`);
    }
  };
  const kube = {
    async createJob(job: V1Job) {
      maybeFail("createJob");
      if (jobs.get(job.metadata!.name!)) throw new Conflict("exists");
      jobs.put(job);
      created.push(job.metadata!.name!);
      return job;
    },
    async deleteJob(_ns: string, name: string) {
      jobs.items.delete(name);
    },
    async createSecret(s: V1Secret) {
      maybeFail("createSecret");
      if (secrets.get(s.metadata!.name!)) throw new Conflict("exists");
      secrets.put(s);
      return s;
    },
    async replaceSecret(s: V1Secret) {
      secrets.put(s);
      return s;
    },
    async replaceRunStatus(run: AgentRun) {
      maybeFail("status");
      const cur = server.get(run.metadata.name) ?? runs.get(run.metadata.name)!;
      if (cur.metadata.resourceVersion !== run.metadata.resourceVersion) throw new Conflict("stale");
      const next = { ...cur, status: run.status, metadata: { ...cur.metadata, resourceVersion: String(++rv) } };
      server.set(next.metadata.name, next);
      if (!sync.lag) runs.put(next);
      return next;
    },
    async createEvent(_ns: string, e: object) {
      events.push((e as { reason: string }).reason);
    },
  };
  const reconciler = () =>
    new Reconciler({
      kube,
      runs,
      jobs,
      pods,
      jobSettings: SETTINGS,
      planOptions: { ...DEFAULT_PLAN_OPTIONS, backoffBaseSeconds: 0 },
      log: pino({ level: "silent" }),
      now: () => new Date("2026-01-01T00:10:00Z"),
    });
  const run = agentRun();
  runs.put(run);
  const key = `${run.metadata.namespace}/${run.metadata.name}`;
  /** The runner of the current Job finishes with `result`. */
  const finish = (jobName: string, result: StageResultInput | undefined, o: Parameters<typeof finishedJob>[4] = {}) => {
    const job = jobs.get(jobName)!;
    const stage = job.metadata!.labels!["agentfactory.dev/stage"] as "triage";
    const attempt = Number(job.metadata!.labels!["agentfactory.dev/attempt"]);
    const done = finishedJob(runs.get(run.metadata.name)!, stage, attempt, result, {
      ...o,
      at: "2026-01-01T00:09:00Z",
    });
    done.job.metadata = job.metadata;
    done.pod.metadata!.ownerReferences![0]!.uid = job.metadata!.uid ?? "";
    done.pod.metadata!.ownerReferences![0]!.name = jobName;
    jobs.put(done.job);
    pods.put(done.pod);
  };
  const current = () => runs.get(run.metadata.name)!;
  return { runs, jobs, pods, secrets, created, events, kube, reconciler, key, finish, current, sync, server };
}

const ok = (stage: string, extra: object = {}) =>
  ({ stage, outcome: "succeeded", costUsd: 0.1, turns: 2, ...extra }) as StageResultInput;
const clean = ok("triage", { triage: { verdict: "clear" } });
const write = ok("write", {
  write: { prNumber: 4, prUrl: "u", branch: "agent/7-add-a-health-endpoint", headSha: "abc" },
});
const review = (blocking: number) =>
  ok("review", { review: { riskTier: "low", checks: { tests: "success" }, findings: { total: blocking, blocking } } });

async function drive(w: ReturnType<typeof world>, r = w.reconciler()) {
  for (let i = 0; i < 3; i++) await r.reconcile(w.key).catch((e) => e);
}

describe("Reconciler", () => {
  it("drives a clean run to Ready with one Job per stage and one status write per change", async () => {
    const w = world();
    const r = w.reconciler();
    await r.reconcile(w.key);
    expect(w.created).toEqual([`${w.current().metadata.name}-triage-1`]);
    expect(w.current().status!.phase).toBe("Triaging");
    expect(w.secrets.list()).toHaveLength(1);
    const rv = w.current().metadata.resourceVersion;
    await r.reconcile(w.key); // nothing changed: no write
    expect(w.current().metadata.resourceVersion).toBe(rv);

    w.finish(w.created.at(-1)!, clean);
    await r.reconcile(w.key);
    expect(w.current().status!.phase).toBe("Writing");
    w.finish(w.created.at(-1)!, write);
    await r.reconcile(w.key);
    expect(w.current().status!.phase).toBe("Reviewing");
    expect(w.current().status!.pullRequest?.number).toBe(4);
    w.finish(w.created.at(-1)!, review(0));
    await r.reconcile(w.key);
    const s = w.current().status!;
    expect(s.phase).toBe("Ready");
    expect(s.conditions.find((c) => c.type === "Finalized")?.status).toBe("True");
    expect(w.created.map((n) => n.split("-").slice(-2).join("-"))).toEqual(["triage-1", "write-1", "review-1"]);
    expect(s.costUsd).toBeCloseTo(0.3);
    await r.flushEvents();
    expect(w.events).toContain("Finalized");
  });

  it("egress on: reserves each attempt, puts only the attempt token in the Secret, ends it, takes the ledger's spend", async () => {
    const w = world();
    const calls: string[] = [];
    let metered = 0;
    const egress = {
      settings: { url: "http://egress", adminUrl: "http://egress-admin", adminToken: "t", attemptTokenKey: "k" },
      async reserve(_ns: string, _name: string, stage: string, r: { attempt: number; budgetUsd: number }) {
        calls.push(`reserve ${stage}#${r.attempt} $${r.budgetUsd}`);
        return { budgetUsd: r.budgetUsd, spentUsd: metered, heldUsd: 0, remainingUsd: 0, refused: 0 };
      },
      async end(_ns: string, _name: string, stage: string, attempt: number) {
        calls.push(`end ${stage}#${attempt}`);
      },
      async read() {
        return { budgetUsd: 1, spentUsd: metered, heldUsd: 0, remainingUsd: 0, refused: 0 };
      },
      async mint(claims: { stage: string; attempt: number }) {
        return `attempt-token-${claims.stage}-${claims.attempt}`;
      },
    };
    const r = new Reconciler({
      kube: w.kube,
      runs: w.runs,
      jobs: w.jobs,
      pods: w.pods,
      jobSettings: { ...SETTINGS, egress: { url: "http://egress" } },
      planOptions: { ...DEFAULT_PLAN_OPTIONS, backoffBaseSeconds: 0 },
      egress: egress as never,
      log: pino({ level: "silent" }),
      now: () => new Date("2026-01-01T00:10:00Z"),
    });
    await r.reconcile(w.key);
    const name = `${w.current().metadata.name}-triage-1`;
    expect(calls).toEqual([`reserve triage#1 $${w.current().spec.budgetUsd}`]);
    const secret = w.secrets.get(name)!;
    expect(Object.keys(secret.data!)).toEqual([ATTEMPT_TOKEN_KEY]);
    expect(Buffer.from(secret.data![ATTEMPT_TOKEN_KEY]!, "base64").toString()).toBe("attempt-token-triage-1");

    // The pod says $0.10; the gateway metered $0.25: the ledger's figure counts, with a Warning.
    metered = 0.25;
    w.finish(name, clean);
    await r.reconcile(w.key);
    expect(calls).toContain("end triage#1");
    expect(w.current().status!.phase).toBe("Writing");
    expect(w.current().status!.costUsd).toBe(0.25);
    await r.flushEvents();
    expect(w.events).toContain("SpendMismatch");
    expect(calls.at(-1)).toMatch(/^reserve write#1 \$/);
  });

  it("findings twice escalate after the last remediation round", async () => {
    const w = world();
    const r = w.reconciler();
    await r.reconcile(w.key);
    const steps = [
      clean,
      write,
      review(2),
      ok("remediate", { remediate: { headSha: "d1" } }),
      review(1),
      ok("remediate", { remediate: { headSha: "d2" } }),
      review(1),
    ];
    for (const res of steps) {
      w.finish(w.created.at(-1)!, res);
      await r.reconcile(w.key);
    }
    expect(w.current().status!.phase).toBe("Escalated");
    expect(w.current().status!.round).toBe(2);
    expect(w.created).toHaveLength(7);
  });

  it("retries an infrastructure failure as a new attempt", async () => {
    const w = world();
    const r = w.reconciler();
    await r.reconcile(w.key);
    w.finish(w.created[0]!, undefined, { failed: true, reason: "OOMKilled", message: "" });
    await r.reconcile(w.key);
    expect(w.created.at(-1)).toMatch(/-triage-2$/);
    expect(w.current().status!.stages[0]!.outcome).toBe("Error");
  });

  it("cancels: deletes the running Job and ends Cancelled", async () => {
    const w = world();
    const r = w.reconciler();
    await r.reconcile(w.key);
    w.runs.put({ ...w.current(), spec: { ...w.current().spec, suspend: true } });
    await r.reconcile(w.key);
    expect(w.current().status!.phase).toBe("Cancelled");
    expect(w.jobs.list()).toHaveLength(0);
  });

  for (const failAt of ["createSecret", "createJob", "status"]) {
    it(`survives a crash at ${failAt}: the retry creates no second Job`, async () => {
      const w = world({ failAt });
      await drive(w, w.reconciler()); // first attempt crashes, later ones (a fresh process) recover
      await drive(w, w.reconciler());
      expect(w.created).toEqual([`${w.current().metadata.name}-triage-1`]);
      expect(w.current().status!.stages).toHaveLength(1);
      expect(w.current().status!.phase).toBe("Triaging");
    });
  }

  it("acts on its own last write while the cache lags, and a stale write from elsewhere is a StaleError", async () => {
    const w = world();
    const r = w.reconciler();
    await r.reconcile(w.key); // triage-1 created, status written; the cache is current
    w.sync.lag = true;
    w.finish(w.created[0]!, clean);
    await r.reconcile(w.key); // writes Writing + creates write-1, but the cache keeps the Triaging object
    expect(w.created).toHaveLength(2);
    await r.reconcile(w.key); // reads its own write, not the stale cache: nothing to do, no conflict
    expect(w.created).toHaveLength(2);
    const other = w.reconciler(); // a process without that memory acts on the stale cache
    await expect(other.reconcile(w.key)).rejects.toBeInstanceOf(StaleError);
    expect(w.created).toHaveLength(2); // deterministic names: the Job it tried exists already
    expect(w.server.get(w.current().metadata.name)!.status!.phase).toBe("Writing");
  });
});

describe("sameStatus", () => {
  it("ignores key order and undefined fields", () => {
    const a: AgentRunStatus = { phase: "Pending", conditions: [], round: 0, questions: 0, stages: [], costUsd: 0 };
    expect(
      sameStatus({ ...a }, {
        costUsd: 0,
        stages: [],
        questions: 0,
        round: 0,
        conditions: [],
        phase: "Pending",
        message: undefined,
      } as never),
    ).toBe(true);
    expect(sameStatus(undefined, a as never)).toBe(false);
    expect(sameStatus(a as never, { ...a, round: 1 } as never)).toBe(false);
  });
});

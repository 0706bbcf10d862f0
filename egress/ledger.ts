import { randomUUID } from "node:crypto";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import type { AttemptClaims } from "../core/attempt-token.ts";
import type { StageName } from "../core/result.ts";
import { addTokens, type Tokens, zeroTokens } from "../core/usage.ts";

/**
 * The budget ledger: one NATS JetStream KV entry per AgentRun, shared by every egress replica.
 * Every change is a compare-and-swap on the entry's revision (read, change, `update(key, value,
 * revision)`, retry on "wrong last sequence"), so concurrent replicas never lose an update and never
 * admit more than the budget between them.
 *
 * Admission: a model request first places a hold of its worst-case cost. It is admitted only if
 * `spent + holds + hold <= budget`; when the response's usage is known, the hold is replaced by the
 * actual cost. Holds that are never settled (a replica died) expire after the hold timeout.
 */

export interface StageEntry {
  attempt: number;
  repo: string;
  branch: string;
  /** The installation token, sealed for this attempt (see seal.ts); absent when none was given. */
  forgeToken?: string;
  ended: boolean;
  reservedAt: string;
  /** Spend, tokens, requests and refusals of this stage over all its attempts. */
  spentUsd: number;
  tokens: Tokens;
  requests: number;
  refused: number;
}

export interface RunEntry {
  namespace: string;
  name: string;
  uid: string;
  budgetUsd: number;
  spentUsd: number;
  holds: Record<string, { usd: number; until: number }>;
  stages: Partial<Record<StageName, StageEntry>>;
  updatedAt: string;
}

export interface Reservation {
  uid: string;
  budgetUsd: number;
  stage: StageName;
  attempt: number;
  repo: string;
  branch: string;
  /** Already sealed (the ledger never sees a plain token). */
  forgeToken?: string;
}

export type AttemptRefusal = "not_reserved" | "attempt_not_current";
export type HoldResult =
  | { ok: true; holdId: string; run: RunEntry }
  | { ok: false; reason: AttemptRefusal | "budget_exhausted"; run?: RunEntry };

export interface Charge {
  usd: number;
  tokens: Tokens;
}

const EPSILON = 1e-9;

export function ledgerKey(namespace: string, name: string): string {
  // Kubernetes names may hold dots (token separators in KV keys) but never underscores.
  return `run.${namespace}.${name.replaceAll(".", "_")}`;
}

export const heldUsd = (run: RunEntry): number => Object.values(run.holds).reduce((sum, h) => sum + h.usd, 0);

/** Why the attempt a token names cannot act now, if it cannot. */
export function attemptRefusal(run: RunEntry | undefined, claims: AttemptClaims): AttemptRefusal | undefined {
  if (!run || run.uid !== claims.run.uid) return "not_reserved";
  const stage = run.stages[claims.stage];
  if (!stage || stage.attempt !== claims.attempt || stage.ended) return "attempt_not_current";
  // The token and the reservation were both made by the operator; they must agree.
  if (stage.repo.toLowerCase() !== claims.repo.toLowerCase() || stage.branch !== claims.branch) {
    return "attempt_not_current";
  }
  return undefined;
}

type Mutation<T> = { next?: RunEntry | null; result: T };

export class Ledger {
  private constructor(
    private readonly kv: KV,
    private readonly holdTimeoutMs: number,
    private readonly onConflict: () => void,
  ) {}

  /** Opens (creating when missing) the ledger bucket. */
  static async open(
    nc: NatsConnection,
    opts: { bucket: string; ttlMs: number; replicas?: number; holdTimeoutMs: number; onConflict?: () => void },
  ): Promise<Ledger> {
    const kv = await new Kvm(nc).create(opts.bucket, {
      history: 1,
      ttl: opts.ttlMs,
      replicas: opts.replicas ?? 1,
      description: "AgentFactory egress gateway: run budgets, spend and stage attempts",
    });
    return new Ledger(kv, opts.holdTimeoutMs, opts.onConflict ?? (() => {}));
  }

  async read(namespace: string, name: string): Promise<RunEntry | undefined> {
    return (await this.get(ledgerKey(namespace, name))).run;
  }

  /**
   * Reserves the run's budget for a stage attempt: sets the run's budget, makes this attempt the
   * stage's current one and ends every other stage's attempt (a run has one stage at a time). A run
   * recreated under the same name (another uid) starts a fresh entry.
   */
  reserve(namespace: string, name: string, r: Reservation): Promise<RunEntry> {
    return this.mutate(ledgerKey(namespace, name), (run, now) => {
      const base: RunEntry =
        run && run.uid === r.uid
          ? run
          : { namespace, name, uid: r.uid, budgetUsd: 0, spentUsd: 0, holds: {}, stages: {}, updatedAt: "" };
      const stages: RunEntry["stages"] = {};
      for (const [stage, entry] of Object.entries(base.stages) as [StageName, StageEntry][]) {
        stages[stage] = stage === r.stage ? entry : { ...withoutToken(entry), ended: true };
      }
      const prev = stages[r.stage];
      stages[r.stage] = {
        attempt: r.attempt,
        repo: r.repo,
        branch: r.branch,
        ...(r.forgeToken ? { forgeToken: r.forgeToken } : {}),
        ended: false,
        reservedAt: prev?.attempt === r.attempt ? prev.reservedAt : new Date(now).toISOString(),
        spentUsd: prev?.spentUsd ?? 0,
        tokens: prev?.tokens ?? zeroTokens(),
        requests: prev?.requests ?? 0,
        refused: prev?.refused ?? 0,
      };
      const next = { ...base, budgetUsd: r.budgetUsd, stages, updatedAt: new Date(now).toISOString() };
      return { next, result: next };
    });
  }

  /** Ends a stage's attempt (its tokens stop working at once) and forgets its forge token. */
  end(namespace: string, name: string, stage: StageName, attempt?: number): Promise<RunEntry | undefined> {
    return this.mutate(ledgerKey(namespace, name), (run, now) => {
      const entry = run?.stages[stage];
      if (!run || !entry || (attempt !== undefined && entry.attempt !== attempt)) return { result: run };
      const next = {
        ...run,
        stages: { ...run.stages, [stage]: { ...withoutToken(entry), ended: true } },
        updatedAt: new Date(now).toISOString(),
      };
      return { next, result: next };
    });
  }

  async remove(namespace: string, name: string): Promise<boolean> {
    const key = ledgerKey(namespace, name);
    const existed = (await this.get(key)).run !== undefined;
    await this.kv.purge(key);
    return existed;
  }

  /** Places a hold of `usd` for the token's attempt, or says why it may not. */
  hold(claims: AttemptClaims, usd: number): Promise<HoldResult> {
    return this.mutate(ledgerKey(claims.run.namespace, claims.run.name), (stored, now): Mutation<HoldResult> => {
      const refusal = attemptRefusal(stored, claims);
      if (refusal || !stored) return { result: { ok: false, reason: refusal ?? "not_reserved" } };
      const run = { ...stored, holds: liveHolds(stored, now), updatedAt: new Date(now).toISOString() };
      // A refusal writes nothing here; the caller counts it (countRefusal) like every other refusal.
      if (run.spentUsd + heldUsd(run) + usd > run.budgetUsd + EPSILON) {
        return { result: { ok: false, reason: "budget_exhausted", run } };
      }
      const holdId = randomUUID();
      const next = { ...run, holds: { ...run.holds, [holdId]: { usd, until: now + this.holdTimeoutMs } } };
      return { next, result: { ok: true, holdId, run: next } };
    });
  }

  /** Replaces a hold by the actual charge (also when the hold already expired: what was spent is spent). */
  settle(claims: AttemptClaims, holdId: string, charge: Charge): Promise<RunEntry | undefined> {
    return this.mutate(ledgerKey(claims.run.namespace, claims.run.name), (stored, now) => {
      if (!stored || stored.uid !== claims.run.uid) return { result: undefined };
      const { [holdId]: _, ...rest } = liveHolds(stored, now);
      const run = {
        ...stored,
        holds: rest,
        spentUsd: stored.spentUsd + charge.usd,
        updatedAt: new Date(now).toISOString(),
      };
      const next = bumpStage(run, claims.stage, (s) => ({
        ...s,
        spentUsd: s.spentUsd + charge.usd,
        tokens: addTokens(s.tokens, charge.tokens),
        requests: s.requests + 1,
      }));
      return { next, result: next };
    });
  }

  /** The run entry when the token's attempt may act now, else the reason it may not. */
  async current(claims: AttemptClaims): Promise<{ run: RunEntry; stage: StageEntry } | { refusal: AttemptRefusal }> {
    const run = await this.read(claims.run.namespace, claims.run.name);
    const refusal = attemptRefusal(run, claims);
    if (refusal || !run) return { refusal: refusal ?? "not_reserved" };
    return { run, stage: run.stages[claims.stage] as StageEntry };
  }

  /** Counts a refused request (forge, CONNECT) on the attempt's stage. */
  countRefusal(claims: AttemptClaims): Promise<void> {
    return this.mutate(ledgerKey(claims.run.namespace, claims.run.name), (run, now) => {
      if (!run || run.uid !== claims.run.uid || !run.stages[claims.stage]) return { result: undefined };
      const next = bumpStage({ ...run, updatedAt: new Date(now).toISOString() }, claims.stage, (s) => ({
        ...s,
        refused: s.refused + 1,
      }));
      return { next, result: undefined };
    });
  }

  /**
   * The last entry this replica read or wrote, per key: the first compare-and-swap of a change is
   * tried against it, saving a read. A stale copy (another replica wrote since) only costs a failed
   * swap and a fresh read; the swap itself is what guarantees correctness.
   */
  private readonly cache = new Map<string, { run?: RunEntry; revision: number }>();

  private remember(key: string, value: { run?: RunEntry; revision: number }): void {
    this.cache.delete(key);
    if (this.cache.size >= 10_000) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, value);
  }

  private async get(key: string): Promise<{ run?: RunEntry; revision: number }> {
    const entry = await this.kv.get(key);
    const value =
      entry?.operation === "PUT"
        ? { run: entry.json<RunEntry>(), revision: entry.revision }
        : { revision: entry?.revision ?? 0 };
    this.remember(key, value);
    return value;
  }

  /** Read, change, write-if-unchanged; retried from a fresh read whenever another writer came first. */
  private async mutate<T>(key: string, change: (run: RunEntry | undefined, now: number) => Mutation<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const cached = attempt === 0 ? this.cache.get(key) : undefined;
      const { run, revision } = cached ?? (await this.get(key));
      const { next, result } = change(run, Date.now());
      // Nothing to write: answer from a fresh read only, never from the cache alone.
      if (next === undefined) {
        if (cached) continue;
        return result;
      }
      try {
        if (next === null) {
          await this.kv.delete(key, { previousSeq: revision });
          this.cache.delete(key);
        } else {
          const written =
            revision === 0 || !run
              ? await this.kv.create(key, JSON.stringify(next))
              : await this.kv.update(key, JSON.stringify(next), revision);
          this.remember(key, { run: next, revision: written });
        }
        return result;
      } catch (err) {
        this.cache.delete(key);
        if (!isConflict(err) || attempt >= 1000) throw err;
        // A stale cached copy is not a contended write.
        if (cached) continue;
        this.onConflict();
        // Spread the retries of many contenders a little.
        if (attempt > 2) await new Promise((r) => setTimeout(r, Math.random() * Math.min(attempt, 20)));
      }
    }
  }
}

function isConflict(err: unknown): boolean {
  if (err instanceof JetStreamApiError) {
    return (
      err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown
    );
  }
  return /wrong last sequence/i.test(String((err as Error)?.message));
}

function liveHolds(run: RunEntry, now: number): RunEntry["holds"] {
  return Object.fromEntries(Object.entries(run.holds).filter(([, h]) => h.until > now));
}

function withoutToken(entry: StageEntry): StageEntry {
  const { forgeToken: _, ...rest } = entry;
  return rest;
}

function bumpStage(run: RunEntry, stage: StageName, change: (s: StageEntry) => StageEntry): RunEntry {
  const entry = run.stages[stage];
  return entry ? { ...run, stages: { ...run.stages, [stage]: change(entry) } } : run;
}

/** What the handlers use of the ledger. */
export type LedgerApi = Pick<
  Ledger,
  "read" | "reserve" | "end" | "remove" | "hold" | "settle" | "current" | "countRefusal"
>;

/** The ledger is not reachable yet (NATS down at start): requests get 503 and are retried. */
export class LedgerUnavailable extends Error {
  constructor() {
    super("the budget ledger (NATS) is not reachable yet");
    this.name = "LedgerUnavailable";
  }
}

/**
 * A ledger that is still being opened (the gateway starts serving before NATS answers, and stays
 * unready until then): every call fails with LedgerUnavailable until `opening` resolves.
 */
export function pendingLedger(opening: Promise<Ledger>): LedgerApi & { ready(): boolean } {
  let ledger: Ledger | undefined;
  opening.then(
    (l) => {
      ledger = l;
    },
    () => {},
  );
  const use = (): Ledger => {
    if (!ledger) throw new LedgerUnavailable();
    return ledger;
  };
  return {
    ready: () => ledger !== undefined,
    read: async (...a) => use().read(...a),
    reserve: async (...a) => use().reserve(...a),
    end: async (...a) => use().end(...a),
    remove: async (...a) => use().remove(...a),
    hold: async (...a) => use().hold(...a),
    settle: async (...a) => use().settle(...a),
    current: async (...a) => use().current(...a),
    countRefusal: async (...a) => use().countRefusal(...a),
  };
}

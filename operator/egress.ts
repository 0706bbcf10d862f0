import { type AttemptClaims, attemptTokenKey, issueAttemptToken } from "../core/attempt-token.ts";
import type { StageName } from "../core/result.ts";

/**
 * The operator's side of the egress gateway (egress/admin.ts): reserves a stage attempt's budget and
 * hands over the stage's forge token before its Job starts, ends the attempt when the Job finished,
 * reads the run's spend from the ledger, and mints the attempt token, the only secret the pod gets.
 */
export interface EgressSettings {
  /** The egress Service's runner port, as the pod reaches it (e.g. http://agentfactory-egress:8080). */
  url: string;
  /** The admin API (e.g. http://agentfactory-egress:8081). */
  adminUrl: string;
  adminToken: string;
  /** The attempt token key shared with the gateway (≥ 32 bytes). */
  attemptTokenKey: string;
  /** Spend difference (USD) between the ledger and the runner's own count tolerated without a Warning. */
  spendToleranceUsd?: number;
}

export interface Reservation {
  uid: string;
  budgetUsd: number;
  attempt: number;
  repo: string;
  branch: string;
  forgeToken?: string;
}

/** The admin API's view of a run (no forge token). */
export interface LedgerView {
  budgetUsd: number;
  spentUsd: number;
  heldUsd: number;
  remainingUsd: number;
  refused: number;
}

export class EgressAdmin {
  private readonly key: Uint8Array;

  constructor(
    readonly settings: EgressSettings,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {
    this.key = attemptTokenKey(settings.attemptTokenKey);
  }

  private async call(method: string, path: string, body?: unknown): Promise<Response> {
    const res = await this.fetchImpl(`${this.settings.adminUrl.replace(/\/$/, "")}/admin/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.settings.adminToken}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return res;
  }

  /** Reserves the attempt (idempotent: the same attempt again refreshes its forge token, keeps the spend). */
  async reserve(namespace: string, name: string, stage: StageName, r: Reservation): Promise<LedgerView> {
    const res = await this.call("PUT", `/runs/${namespace}/${name}/stages/${stage}`, {
      ...r,
      budgetUsd: Math.max(0, r.budgetUsd),
    });
    if (!res.ok) throw new Error(`egress: reserving ${namespace}/${name} ${stage}#${r.attempt}: HTTP ${res.status}`);
    return (await res.json()) as LedgerView;
  }

  /** Ends the attempt: its token stops working, its forge token is dropped. A run not in the ledger is fine. */
  async end(namespace: string, name: string, stage: StageName, attempt: number): Promise<void> {
    const res = await this.call("DELETE", `/runs/${namespace}/${name}/stages/${stage}?attempt=${attempt}`);
    if (!res.ok && res.status !== 404) {
      throw new Error(`egress: ending ${namespace}/${name} ${stage}#${attempt}: HTTP ${res.status}`);
    }
  }

  /** The run's entry in the ledger, or undefined when it has none. */
  async read(namespace: string, name: string): Promise<LedgerView | undefined> {
    const res = await this.call("GET", `/runs/${namespace}/${name}`);
    if (res.status === 404) return undefined;
    if (!res.ok) throw new Error(`egress: reading ${namespace}/${name}: HTTP ${res.status}`);
    return (await res.json()) as LedgerView;
  }

  /** The attempt token of one stage attempt, valid for `ttlSeconds`. */
  mint(claims: AttemptClaims, ttlSeconds: number): Promise<string> {
    return issueAttemptToken(claims, this.key, { ttlSeconds: Math.min(ttlSeconds, 24 * 3600) });
  }
}

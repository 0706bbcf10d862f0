import type { CoordinationV1Api, V1Lease } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { isConflict, isNotFound } from "./client.ts";

export interface LeaderElectionOptions {
  api: CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log?: Logger;
  now?: () => number;
}

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits (the API server rejects milliseconds). */
export const microTime = (ms: number): string => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");

/**
 * Lease-based leader election with client-go's timings (15 s lease, 10 s renew deadline, 2 s retry).
 * `run()` resolves once this process leads; `lost` resolves when it stops leading (the caller exits).
 */
export class LeaderElector {
  private leading = false;
  private lastRenew = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private inflight?: Promise<boolean>;
  private resolveLost!: (reason: string) => void;
  readonly lost: Promise<string> = new Promise((r) => {
    this.resolveLost = r;
  });
  private readonly o: Required<Omit<LeaderElectionOptions, "log">> & { log?: Logger };

  constructor(options: LeaderElectionOptions) {
    this.o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, now: Date.now, ...options };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Tries until this process holds the lease, then keeps renewing it in the background. */
  async run(): Promise<void> {
    while (!this.stopped && !(await this.tryAcquireOrRenew())) await sleep(this.o.retryPeriodMs);
    if (this.stopped) return;
    this.leading = true;
    this.o.log?.info({ lease: this.o.name, identity: this.o.identity }, "became leader");
    const tick = async () => {
      if (this.stopped) return;
      this.inflight = this.tryAcquireOrRenew();
      const ok = await this.inflight;
      if (this.stopped) return;
      if (ok) this.lastRenew = this.o.now();
      else if (this.o.now() - this.lastRenew > this.o.renewDeadlineMs) return this.lose("renew deadline exceeded");
      this.timer = setTimeout(tick, this.o.retryPeriodMs);
    };
    this.lastRenew = this.o.now();
    this.timer = setTimeout(tick, this.o.retryPeriodMs);
  }

  private lose(reason: string): void {
    this.leading = false;
    this.o.log?.error({ lease: this.o.name, reason }, "lost leadership");
    this.resolveLost(reason);
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity } = this.o;
    const now = this.o.now();
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.round(this.o.leaseDurationMs / 1000),
      renewTime: microTime(now) as never,
    };
    try {
      let lease: V1Lease;
      try {
        lease = await api.readNamespacedLease({ name, namespace });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: { ...spec, acquireTime: microTime(now) as never, leaseTransitions: 0 },
          },
        });
        return true;
      }
      const holder = lease.spec?.holderIdentity;
      const renewed = Date.parse(String(lease.spec?.renewTime ?? 0));
      const duration = (lease.spec?.leaseDurationSeconds ?? 15) * 1000;
      if (holder && holder !== identity && renewed + duration > now) return false;
      const takeover = holder !== identity;
      await api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          metadata: { ...lease.metadata, name, namespace },
          spec: {
            ...lease.spec,
            ...spec,
            ...(takeover
              ? { acquireTime: microTime(now) as never, leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + 1 }
              : {}),
          },
        },
      });
      return true;
    } catch (err) {
      if (!isConflict(err)) this.o.log?.warn({ err: (err as Error).message }, "lease update failed");
      return false;
    }
  }

  /** Stops renewing and, when leading, releases the lease so a standby takes over at once. */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.inflight; // a renewal in flight would otherwise write the lease back after us
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.o.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      await this.o.api.replaceNamespacedLease({
        name: this.o.name,
        namespace: this.o.namespace,
        body: { ...lease, spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1 } },
      });
    } catch (err) {
      // best effort: the lease expires on its own
      this.o.log?.warn({ err: (err as Error).message }, "could not release the lease");
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

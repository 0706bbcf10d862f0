/**
 * A controller work queue in the client-go mould: keys are de-duplicated while waiting, a key is
 * handed to one worker at a time (re-added keys wait until it is done), failures back off per key
 * exponentially, and `addRateLimited` also passes a global token bucket.
 *
 * Example:
 *   const q = new WorkQueue({ name: "agentrun" });
 *   q.add("ns/name");
 *   q.run(4, async (key) => { ... }); // returns the requeue delay in ms, or undefined
 */
export interface WorkQueueOptions {
  name: string;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Global rate limit for rate-limited adds. */
  qps?: number;
  burst?: number;
  metrics?: WorkQueueMetrics;
  now?: () => number;
}

export interface WorkQueueMetrics {
  adds(name: string): void;
  depth(name: string, depth: number): void;
  retries(name: string): void;
  queueLatency(name: string, seconds: number): void;
  workDuration(name: string, seconds: number): void;
}

export type ReconcileFn = (key: string) => Promise<{ requeueAfterMs?: number } | undefined>;

export class WorkQueue {
  private readonly queue: string[] = [];
  /** Keys added with `front`, served before `queue`, first come first served. */
  private readonly frontQueue: string[] = [];
  /** Keys re-added with `front` while a worker had them. */
  private readonly frontAfterDone = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly addedAt = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private readonly waiters: (() => void)[] = [];
  private shuttingDown = false;
  private tokens: number;
  private lastRefill: number;
  private readonly opts: Required<Omit<WorkQueueOptions, "metrics">> & { metrics?: WorkQueueMetrics };

  constructor(options: WorkQueueOptions) {
    this.opts = {
      baseDelayMs: 5,
      maxDelayMs: 300_000,
      qps: 10,
      burst: 100,
      now: Date.now,
      ...options,
    };
    this.tokens = this.opts.burst;
    this.lastRefill = this.opts.now();
  }

  get length(): number {
    return this.frontQueue.length + this.queue.length;
  }

  /**
   * Enqueues a key now; a key already waiting is not added twice. `front` puts it ahead of the
   * ordinary keys (new objects first: their first action is the one users wait for); front keys
   * keep their arrival order among themselves, so the first of a burst is not served last.
   */
  add(key: string, opts: { front?: boolean } = {}): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) {
      if (opts.front && this.processing.has(key)) this.frontAfterDone.add(key);
      else if (opts.front) {
        const i = this.queue.indexOf(key);
        if (i >= 0) {
          this.queue.splice(i, 1);
          this.frontQueue.push(key);
        }
      }
      return;
    }
    this.opts.metrics?.adds(this.opts.name);
    this.dirty.add(key);
    this.addedAt.set(key, this.opts.now());
    if (this.processing.has(key)) {
      if (opts.front) this.frontAfterDone.add(key);
      return; // queued again when the worker is done
    }
    if (opts.front) this.frontQueue.push(key);
    else this.queue.push(key);
    this.opts.metrics?.depth(this.opts.name, this.length);
    this.waiters.shift()?.();
  }

  /** Enqueues a key after a delay; of several pending delays for a key the earliest wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = this.opts.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Re-enqueues a failed key: per-key exponential backoff, and never faster than the global bucket allows. */
  addRateLimited(key: string): void {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    this.opts.metrics?.retries(this.opts.name);
    const perKey = Math.min(this.opts.baseDelayMs * 2 ** n, this.opts.maxDelayMs);
    this.addAfter(key, Math.max(perKey, this.bucketDelay()));
  }

  /** Clears a key's failure count after a successful reconcile. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  private bucketDelay(): number {
    const now = this.opts.now();
    this.tokens = Math.min(this.opts.burst, this.tokens + ((now - this.lastRefill) / 1000) * this.opts.qps);
    this.lastRefill = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.opts.qps) * 1000);
  }

  /** Waits for the next key; undefined once the queue shuts down. */
  async get(): Promise<string | undefined> {
    while (this.length === 0) {
      if (this.shuttingDown) return undefined;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const key = (this.frontQueue.length > 0 ? this.frontQueue.shift() : this.queue.shift())!;
    this.dirty.delete(key);
    this.processing.add(key);
    const added = this.addedAt.get(key);
    if (added !== undefined) this.opts.metrics?.queueLatency(this.opts.name, (this.opts.now() - added) / 1000);
    this.opts.metrics?.depth(this.opts.name, this.length);
    return key;
  }

  done(key: string): void {
    this.processing.delete(key);
    const front = this.frontAfterDone.delete(key);
    if (this.dirty.has(key)) {
      (front ? this.frontQueue : this.queue).push(key);
      this.waiters.shift()?.();
    }
  }

  /**
   * Starts `concurrency` workers. A thrown error re-adds the key rate-limited; a returned
   * `requeueAfterMs` schedules it again. Resolves when the queue shuts down and workers are idle.
   */
  async run(concurrency: number, reconcile: ReconcileFn, onError?: (key: string, err: unknown) => void): Promise<void> {
    const worker = async () => {
      for (;;) {
        const key = await this.get();
        if (key === undefined) return;
        const started = this.opts.now();
        try {
          const res = await reconcile(key);
          this.forget(key);
          if (res?.requeueAfterMs !== undefined) this.addAfter(key, res.requeueAfterMs);
        } catch (err) {
          onError?.(key, err);
          this.addRateLimited(key);
        } finally {
          this.opts.metrics?.workDuration(this.opts.name, (this.opts.now() - started) / 1000);
          this.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w();
  }
}

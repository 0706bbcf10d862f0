import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from "@kubernetes/client-node";
import type { Logger } from "pino";

export interface InformerOptions<T extends KubernetesObject> {
  name: string;
  kc: KubeConfig;
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  /** Re-delivers every cached object this often (level-triggered safety net). 0 disables. */
  resyncMs?: number;
  /** Restarts the watch when nothing (event or reconnect) was seen for this long. 0 disables. */
  watchdogMs?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  log?: Logger;
  onRestart?: (name: string, reason: string) => void;
}

function indexObject(index: Map<string, Set<string>>, label: string, o: KubernetesObject, deleted: boolean): void {
  const value = o.metadata?.labels?.[label];
  if (value === undefined) return;
  const key = `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
  const keys = index.get(value);
  if (deleted) {
    keys?.delete(key);
    if (keys?.size === 0) index.delete(value);
  } else if (keys) keys.add(key);
  else index.set(value, new Set([key]));
}

type Handler<T> = (obj: T, kind: "add" | "update" | "delete" | "resync") => void;

/**
 * A list-watch cache that keeps itself alive. client-node's ListWatch stops for good on any error
 * that is not a 410 (and `stop()` itself reports an abort as an error); this wrapper restarts it
 * with capped exponential backoff, re-delivers the cache periodically, and restarts a watch that
 * went silent.
 */
export class ResilientInformer<T extends KubernetesObject> {
  private lw: ListWatch<T>;
  private stopped = true;
  private synced = false;
  private failures = 0;
  private lastActivity = Date.now();
  private restartTimer?: NodeJS.Timeout;
  private resyncTimer?: NodeJS.Timeout;
  private watchdogTimer?: NodeJS.Timeout;
  private readonly handlers: Handler<T>[] = [];
  /** label key → label value → `ns/name` keys; built on the first byLabel() for a key, kept from events. */
  private readonly indexes = new Map<string, Map<string, Set<string>>>();

  constructor(private readonly opts: InformerOptions<T>) {
    this.lw = this.makeListWatch();
  }

  private makeListWatch(): ListWatch<T> {
    const lw = new ListWatch<T>(
      this.opts.path,
      new Watch(this.opts.kc),
      this.opts.list,
      false,
      this.opts.labelSelector,
      this.opts.fieldSelector,
    );
    const touch = () => {
      this.lastActivity = Date.now();
    };
    lw.on("add", (o) => {
      touch();
      this.emit(o, "add");
    });
    lw.on("update", (o) => {
      touch();
      this.emit(o, "update");
    });
    lw.on("delete", (o) => {
      touch();
      this.emit(o, "delete");
    });
    lw.on("connect", () => {
      touch();
      this.failures = 0;
    });
    lw.on("error", (err) => {
      if (this.stopped || lw !== this.lw) return; // our own stop() aborts the request and reports it
      this.scheduleRestart(`error: ${(err as Error)?.message ?? String(err)}`);
    });
    return lw;
  }

  on(handler: Handler<T>): void {
    this.handlers.push(handler);
  }

  private emit(obj: T, kind: "add" | "update" | "delete" | "resync"): void {
    for (const [label, index] of this.indexes) indexObject(index, label, obj, kind === "delete");
    for (const h of this.handlers) h(obj, kind);
  }

  /**
   * The cached objects whose label `key` is `value` (optionally in one namespace), from an index
   * instead of a scan of the whole cache: the reconciler asks this for every run's Jobs and Pods.
   */
  byLabel(key: string, value: string, namespace?: string): T[] {
    let index = this.indexes.get(key);
    if (!index) {
      index = new Map();
      for (const o of this.lw.list()) indexObject(index, key, o, false);
      this.indexes.set(key, index);
    }
    const out: T[] = [];
    for (const k of index.get(value) ?? []) {
      const slash = k.indexOf("/");
      const ns = k.slice(0, slash);
      if (namespace !== undefined && ns !== namespace) continue;
      const o = this.lw.get(k.slice(slash + 1), ns || undefined);
      // Entries can lag (a label changed, a relist dropped the object): the cache has the last word.
      if (o?.metadata?.labels?.[key] === value) out.push(o);
    }
    return out;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.lw.list(namespace);
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** Lists (first sync) and starts watching; resolves once the first list is in the cache. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.startOnce();
    const { resyncMs = 0, watchdogMs = 0 } = this.opts;
    if (resyncMs > 0) {
      this.resyncTimer = setInterval(() => {
        for (const o of this.lw.list()) this.emit(o, "resync");
      }, resyncMs);
      this.resyncTimer.unref();
    }
    if (watchdogMs > 0) {
      this.watchdogTimer = setInterval(
        () => {
          if (Date.now() - this.lastActivity > watchdogMs) this.restartNow("watchdog: watch silent");
        },
        Math.max(1000, Math.floor(watchdogMs / 3)),
      );
      this.watchdogTimer.unref();
    }
  }

  private async startOnce(): Promise<void> {
    this.lastActivity = Date.now();
    try {
      await this.lw.start();
      this.synced = true;
    } catch (err) {
      this.scheduleRestart(`start failed: ${(err as Error).message}`);
      throw err;
    }
  }

  private scheduleRestart(reason: string): void {
    if (this.stopped || this.restartTimer) return;
    const { baseBackoffMs = 500, maxBackoffMs = 30_000 } = this.opts;
    const delay = Math.min(baseBackoffMs * 2 ** this.failures, maxBackoffMs);
    this.failures += 1;
    this.opts.log?.warn({ informer: this.opts.name, reason, delayMs: delay }, "informer restarting");
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.restartNow(reason);
    }, delay);
    this.restartTimer.unref();
  }

  /** Replaces the ListWatch with a fresh one that relists; the cache is swapped on the new list. */
  private restartNow(reason: string): void {
    if (this.stopped) return;
    this.opts.onRestart?.(this.opts.name, reason);
    const old = this.lw;
    const fresh = this.makeListWatch();
    // Seed the fresh cache (ListWatch keeps it in a private map) so reads stay served while it
    // relists; objects gone in the meantime get their delete callbacks from the relist.
    const cache = (fresh as unknown as { objects: Map<string, Map<string, T>> }).objects;
    for (const o of old.list()) {
      const ns = o.metadata?.namespace ?? "";
      if (!cache.has(ns)) cache.set(ns, new Map());
      cache.get(ns)!.set(o.metadata?.name ?? "", o);
    }
    this.lw = fresh;
    void old.stop();
    this.startOnce().catch(() => {});
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearInterval(this.resyncTimer);
    clearInterval(this.watchdogTimer);
    await this.lw.stop();
  }
}

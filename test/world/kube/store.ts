/**
 * The simulator's storage and registry: objects by resource type, one global resourceVersion counter, a bounded
 * event history per resource for watches (like the API server's watch cache), and the API server's write semantics (metadata, status subresource, generation,
 * optimistic concurrency, schema validation, finalizers, ownerReference garbage collection).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { defaultObject, validateBuiltin } from "./builtins.ts";
import { ApiError, alreadyExists, badRequest, conflict, invalid, notFound, type StatusCause } from "./errors.ts";
import { apiVersionOf, type ResourceType } from "./resources.ts";
import { matchesFields, matchesLabels, parseSelector, type Requirement } from "./selectors.ts";
import { makeValidator, type Validator } from "./validation.ts";

export type Obj = Record<string, unknown>;
export type Meta = {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
  [k: string]: unknown;
};

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export interface StoreEvent {
  type: EventType;
  rv: number;
  storageKey: string;
  object: Obj;
  /** The object before the change (MODIFIED), used to turn selector transitions into ADDED/DELETED. */
  prev?: Obj;
}

export interface Filter {
  namespace?: string;
  labelSelector?: Requirement[];
  fieldSelector?: Requirement[];
}

export interface DeleteOptions {
  propagationPolicy?: "Orphan" | "Background" | "Foreground";
  preconditions?: { uid?: string; resourceVersion?: string };
}

export function meta(o: Obj): Meta {
  return (o.metadata ?? {}) as Meta;
}

export function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

const NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789";
export function randomSuffix(n = 5): string {
  return [...randomBytes(n)].map((b) => NAME_CHARS[b % NAME_CHARS.length]).join("");
}

function withoutKeys(o: Obj, keys: string[]): Obj {
  const out = { ...o };
  for (const k of keys) delete out[k];
  return out;
}

const equal = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function matchesFilter(o: Obj, f: Filter): boolean {
  if (f.namespace && meta(o).namespace !== f.namespace) return false;
  if (f.labelSelector?.length && !matchesLabels(f.labelSelector, o)) return false;
  if (f.fieldSelector?.length && !matchesFields(f.fieldSelector, o)) return false;
  return true;
}

export function filterFrom(
  namespace: string | undefined,
  labelSelector?: string | null,
  fieldSelector?: string | null,
) {
  return { namespace, labelSelector: parseSelector(labelSelector), fieldSelector: parseSelector(fieldSelector) };
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function validateMeta(m: Meta): StatusCause[] {
  const causes: StatusCause[] = [];
  const name = m.name ?? "";
  if (!DNS_SUBDOMAIN.test(name) || name.length > 253) {
    causes.push({
      reason: "FieldValueInvalid",
      field: "metadata.name",
      message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
    });
  }
  for (const [k, v] of Object.entries(m.labels ?? {})) {
    if (!LABEL_NAME.test(k) || k.split("/").pop()!.length > 63)
      causes.push({
        reason: "FieldValueInvalid",
        field: "metadata.labels",
        message: `Invalid value: "${k}": name part must be a valid label key`,
      });
    if (typeof v !== "string" || !LABEL_VALUE.test(v) || v.length > 63)
      causes.push({
        reason: "FieldValueInvalid",
        field: "metadata.labels",
        message: `Invalid value: "${v}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)`,
      });
  }
  return causes;
}

export class Store {
  /** The global resourceVersion counter (etcd's revision). */
  rv = 0;
  private readonly data = new Map<string, Map<string, Obj>>();
  private readonly uids = new Map<string, { rt: ResourceType; key: string }>();
  /** The last `historyLimit` events of each storage key (the watch cache). */
  private readonly history = new Map<string, StoreEvent[]>();
  /** Watches from a resourceVersion older than this get 410 Gone: per storage key, and globally (compact()). */
  private readonly compactedRvByKey = new Map<string, number>();
  private compactedRv = 0;
  private readonly listeners = new Set<(e: StoreEvent) => void>();
  private readonly validators = new Map<ResourceType, Validator>();
  /** Fields the last validated write dropped (the API server answers them as Warning headers). */
  warnings: string[] = [];

  constructor(
    readonly types: ResourceType[],
    private readonly historyLimit = 1000,
  ) {
    for (const t of types) if (t.schema) this.validators.set(t, makeValidator(t.schema));
  }

  private bucket(rt: ResourceType): Map<string, Obj> {
    let b = this.data.get(rt.storageKey);
    if (!b) {
      b = new Map();
      this.data.set(rt.storageKey, b);
    }
    return b;
  }

  private key(rt: ResourceType, ns: string | undefined, name: string): string {
    return rt.namespaced ? `${ns ?? ""}/${name}` : name;
  }

  private emit(type: EventType, rt: ResourceType, object: Obj, prev?: Obj): void {
    const e: StoreEvent = { type, rv: this.rv, storageKey: rt.storageKey, object, ...(prev ? { prev } : {}) };
    const events = this.history.get(rt.storageKey) ?? [];
    this.history.set(rt.storageKey, events);
    events.push(e);
    if (events.length > this.historyLimit) {
      const dropped = events.splice(0, events.length - this.historyLimit);
      this.compactedRvByKey.set(rt.storageKey, dropped[dropped.length - 1]!.rv);
    }
    for (const l of this.listeners) l(e);
  }

  /** Forgets the event history (like an etcd compaction): watches from any older resourceVersion get 410. */
  compact(): void {
    this.history.clear();
    this.compactedRvByKey.clear();
    this.compactedRv = this.rv;
  }

  /** Subscribes to every change, synchronously. Returns the unsubscribe function. */
  subscribe(l: (e: StoreEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /**
   * The events after `fromRv` for a storage key, or ApiError 410 when they are no longer in the history.
   */
  eventsSince(storageKey: string, fromRv: number): StoreEvent[] {
    const compacted = Math.max(this.compactedRv, this.compactedRvByKey.get(storageKey) ?? 0);
    if (fromRv < compacted) {
      throw new ApiError(410, "Expired", `too old resource version: ${fromRv} (${compacted + 1})`);
    }
    return (this.history.get(storageKey) ?? []).filter((e) => e.rv > fromRv);
  }

  get(rt: ResourceType, ns: string | undefined, name: string): Obj {
    const o = this.bucket(rt).get(this.key(rt, ns, name));
    if (!o) throw notFound(rt, name);
    return o;
  }

  tryGet(rt: ResourceType, ns: string | undefined, name: string): Obj | undefined {
    return this.bucket(rt).get(this.key(rt, ns, name));
  }

  list(rt: ResourceType, filter: Filter = {}): Obj[] {
    const items = [...this.bucket(rt).values()].filter((o) => matchesFilter(o, filter));
    return items.sort((a, b) => {
      const ka = `${meta(a).namespace ?? ""}/${meta(a).name}`;
      const kb = `${meta(b).namespace ?? ""}/${meta(b).name}`;
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
  }

  existsUid(uid: string): boolean {
    return this.uids.has(uid);
  }

  private namespaceType(): ResourceType | undefined {
    return this.types.find((t) => t.group === "" && t.plural === "namespaces");
  }

  private checkNamespace(rt: ResourceType, ns: string | undefined): void {
    if (!rt.namespaced) return;
    const nsType = this.namespaceType();
    if (!ns) throw badRequest("the server could not find the requested resource: namespace is required");
    if (nsType && !this.tryGet(nsType, undefined, ns)) throw notFound(nsType, ns);
  }

  private validate(rt: ResourceType, o: Obj, isCreate: boolean, old?: Obj, strict = false): void {
    this.warnings = [];
    const m = meta(o);
    const causes = validateMeta(m);
    const v = this.validators.get(rt);
    if (v) {
      const result = v(o);
      if (strict && result.pruned.length) {
        const fields = result.pruned.map((p) => `unknown field "${p}"`).join(", ");
        throw badRequest(
          `${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: strict decoding error: ${fields}`,
        );
      }
      causes.push(...result.causes);
      this.warnings = result.pruned.map((p) => `unknown field "${p}"`);
    }
    causes.push(...validateBuiltin(rt, o, isCreate ? undefined : old));
    if (causes.length) throw invalid(rt, m.name ?? "", causes);
  }

  /** POST: assigns metadata, defaults, validates and stores. Status is dropped when it is a subresource. */
  create(rt: ResourceType, ns: string | undefined, body: Obj, opts: { strict?: boolean } = {}): Obj {
    const o = structuredClone(body);
    const m: Meta = { ...meta(o) };
    o.metadata = m;
    if (m.resourceVersion)
      throw new ApiError(500, "InternalError", "resourceVersion should not be set on objects to be created");
    if (rt.namespaced) {
      if (m.namespace && ns && m.namespace !== ns)
        throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
      m.namespace = ns ?? m.namespace;
    } else delete m.namespace;
    this.checkNamespace(rt, m.namespace);
    if (!m.name) {
      if (!m.generateName) {
        throw invalid(rt, "", [
          {
            reason: "FieldValueRequired",
            field: "metadata.name",
            message: "Required value: name or generateName is required",
          },
        ]);
      }
      do m.name = `${m.generateName}${randomSuffix()}`;
      while (this.tryGet(rt, m.namespace, m.name));
    }
    if (this.tryGet(rt, m.namespace, m.name)) throw alreadyExists(rt, m.name);
    o.apiVersion = apiVersionOf(rt);
    o.kind = rt.kind;
    if (rt.subresources.includes("status")) delete o.status;
    m.uid = randomUUID();
    m.creationTimestamp = now();
    m.generation = 1;
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    delete m.resourceVersion;
    defaultObject(rt, o);
    this.validate(rt, o, true, undefined, opts.strict);
    this.rv++;
    m.resourceVersion = String(this.rv);
    this.bucket(rt).set(this.key(rt, m.namespace, m.name), o);
    this.uids.set(m.uid, { rt, key: this.key(rt, m.namespace, m.name) });
    this.emit("ADDED", rt, o);
    return o;
  }

  /**
   * PUT (also the final step of PATCH). `subresource: "status"` takes only the status from `body`; a main
   * write keeps the stored status when status is a subresource. Generation moves when anything outside
   * metadata and status changes.
   */
  update(
    rt: ResourceType,
    ns: string | undefined,
    name: string,
    body: Obj,
    opts: { subresource?: string; requireResourceVersion?: boolean; strict?: boolean } = {},
  ): Obj {
    const old = this.get(rt, ns, name);
    const om = meta(old);
    const bm = meta(body);
    if (bm.name && bm.name !== name)
      throw badRequest(`the name of the object (${bm.name}) does not match the name on the URL (${name})`);
    if (bm.resourceVersion) {
      if (bm.resourceVersion !== om.resourceVersion) throw conflict(rt, name);
    } else if (opts.requireResourceVersion && rt.crd) {
      throw invalid(rt, name, [
        {
          reason: "FieldValueInvalid",
          field: "metadata.resourceVersion",
          message: "Invalid value: 0x0: must be specified for an update",
        },
      ]);
    }
    if (bm.uid && bm.uid !== om.uid) throw conflict(rt, name);
    let o: Obj;
    if (opts.subresource === "status") {
      o = { ...structuredClone(old), status: structuredClone(body.status) };
      if (body.status === undefined) delete o.status;
    } else {
      o = structuredClone(body);
      const m: Meta = { ...bm };
      // System-managed metadata cannot be changed by a write.
      for (const k of [
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "name",
      ]) {
        if (om[k] === undefined) delete m[k];
        else m[k] = om[k];
      }
      o.metadata = m;
      if (rt.subresources.includes("status")) {
        if (old.status === undefined) delete o.status;
        else o.status = structuredClone(old.status);
      }
    }
    o.apiVersion = apiVersionOf(rt);
    o.kind = rt.kind;
    const m = meta(o);
    m.resourceVersion = om.resourceVersion;
    if (opts.subresource !== "status") defaultObject(rt, o, old);
    const specOf = (x: Obj) => withoutKeys(x, ["metadata", "status", "apiVersion", "kind"]);
    if (!equal(specOf(o), specOf(old))) m.generation = (om.generation ?? 0) + 1;
    this.validate(rt, o, false, old, opts.strict);
    // A write that changes nothing is a no-op: no new resourceVersion, no watch event.
    if (equal(o, old)) return old;
    this.rv++;
    m.resourceVersion = String(this.rv);
    const key = this.key(rt, ns, name);
    if (m.deletionTimestamp && (m.finalizers ?? []).length === 0) {
      this.bucket(rt).delete(key);
      this.uids.delete(m.uid!);
      this.emit("DELETED", rt, o, old);
      this.scheduleGc();
      return o;
    }
    this.bucket(rt).set(key, o);
    this.emit("MODIFIED", rt, o, old);
    return o;
  }

  /**
   * Read-modify-write of an object's status through the status subresource, as a controller does it.
   * Returns undefined when the object no longer exists.
   */
  mutateStatus(rt: ResourceType, ns: string | undefined, name: string, mutate: (status: Obj) => void): Obj | undefined {
    const current = this.tryGet(rt, ns, name);
    if (!current) return undefined;
    const next = structuredClone(current);
    const status = (next.status ?? {}) as Obj;
    next.status = status;
    mutate(status);
    return this.update(rt, ns, name, next, { subresource: rt.subresources.includes("status") ? "status" : undefined });
  }

  /**
   * DELETE with propagationPolicy. Objects with finalizers get a deletionTimestamp and stay until the last
   * finalizer is removed. Background (the default, Orphan for batch/v1 Jobs as in the real API) deletes
   * dependents asynchronously; Foreground deletes them first.
   */
  delete(rt: ResourceType, ns: string | undefined, name: string, opts: DeleteOptions = {}): Obj {
    const old = this.get(rt, ns, name);
    const om = meta(old);
    if (opts.preconditions?.uid && opts.preconditions.uid !== om.uid) throw conflict(rt, name);
    if (opts.preconditions?.resourceVersion && opts.preconditions.resourceVersion !== om.resourceVersion)
      throw conflict(rt, name);
    const policy = opts.propagationPolicy ?? (rt.group === "batch" && rt.plural === "jobs" ? "Orphan" : "Background");
    if (policy === "Orphan") this.orphanDependents(om.uid!);
    if (policy === "Foreground") this.deleteDependents(om.uid!, "Foreground");
    if (rt.plural === "namespaces" && rt.group === "") this.deleteNamespaceContents(name);
    const key = this.key(rt, ns, name);
    this.rv++;
    if ((om.finalizers ?? []).length > 0) {
      if (om.deletionTimestamp) return old;
      const o = structuredClone(old);
      // Like the API server's BeforeDelete: graceful deletion also bumps the generation.
      Object.assign(meta(o), {
        deletionTimestamp: now(),
        deletionGracePeriodSeconds: 0,
        generation: (om.generation ?? 0) + 1,
        resourceVersion: String(this.rv),
      });
      this.bucket(rt).set(key, o);
      this.emit("MODIFIED", rt, o, old);
      return o;
    }
    const o = structuredClone(old);
    meta(o).resourceVersion = String(this.rv);
    this.bucket(rt).delete(key);
    this.uids.delete(om.uid!);
    this.emit("DELETED", rt, o, old);
    if (policy === "Background") this.scheduleGc();
    return o;
  }

  private *allObjects(): Generator<[ResourceType, Obj]> {
    const seen = new Set<string>();
    for (const rt of this.types) {
      if (seen.has(rt.storageKey)) continue;
      seen.add(rt.storageKey);
      for (const o of this.bucket(rt).values()) yield [rt, o];
    }
  }

  private dependentsOf(uid: string): [ResourceType, Obj][] {
    return [...this.allObjects()].filter(([, o]) => (meta(o).ownerReferences ?? []).some((r) => r.uid === uid));
  }

  private orphanDependents(uid: string): void {
    for (const [rt, o] of this.dependentsOf(uid)) {
      const m = meta(o);
      const refs = (m.ownerReferences ?? []).filter((r) => r.uid !== uid);
      const next = structuredClone(o);
      const nm = meta(next);
      if (refs.length) nm.ownerReferences = refs;
      else delete nm.ownerReferences;
      this.update(rt, m.namespace, m.name!, next);
    }
  }

  private deleteDependents(uid: string, policy: "Foreground" | "Background"): void {
    for (const [rt, o] of this.dependentsOf(uid)) {
      const m = meta(o);
      const others = (m.ownerReferences ?? []).filter((r) => r.uid !== uid);
      if (others.some((r) => this.existsUid(r.uid))) continue;
      if (this.tryGet(rt, m.namespace, m.name!)) this.delete(rt, m.namespace, m.name!, { propagationPolicy: policy });
    }
  }

  private deleteNamespaceContents(ns: string): void {
    for (const [rt, o] of [...this.allObjects()]) {
      const m = meta(o);
      if (rt.namespaced && m.namespace === ns) this.delete(rt, ns, m.name!, { propagationPolicy: "Background" });
    }
  }

  private gcScheduled = false;

  /** The garbage collector: deletes objects all of whose owners are gone, like kube-controller-manager. */
  private scheduleGc(): void {
    if (this.gcScheduled) return;
    this.gcScheduled = true;
    setTimeout(() => {
      this.gcScheduled = false;
      this.collectGarbage();
    }, 5);
  }

  collectGarbage(): void {
    for (const [rt, o] of [...this.allObjects()]) {
      const m = meta(o);
      const refs = m.ownerReferences ?? [];
      if (refs.length === 0 || refs.some((r) => this.existsUid(r.uid))) continue;
      if (this.tryGet(rt, m.namespace, m.name!))
        this.delete(rt, m.namespace, m.name!, { propagationPolicy: "Background" });
    }
  }
}

/**
 * core/v1 and events.k8s.io/v1 Events share one storage (as in the real API server); these convert between
 * the stored core/v1 shape and the events.k8s.io/v1 view.
 */
type Obj = Record<string, unknown>;

const PAIRS: [core: string, events: string][] = [
  ["involvedObject", "regarding"],
  ["message", "note"],
  ["source", "deprecatedSource"],
  ["firstTimestamp", "deprecatedFirstTimestamp"],
  ["lastTimestamp", "deprecatedLastTimestamp"],
  ["count", "deprecatedCount"],
  ["reportingComponent", "reportingController"],
];

function rename(o: Obj, from: 0 | 1, apiVersion: string): Obj {
  const out: Obj = { ...o, apiVersion, kind: "Event" };
  for (const pair of PAIRS) {
    const src = pair[from];
    const dst = pair[from === 0 ? 1 : 0];
    delete out[src];
    if (o[src] !== undefined) out[dst] = o[src];
  }
  return out;
}

export function eventsV1ToCore(o: Obj): Obj {
  return rename(o, 1, "v1");
}

export function coreToEventsV1(o: Obj): Obj {
  return rename(o, 0, "events.k8s.io/v1");
}

/** Records a core/v1 Event about `obj`, as a controller's event recorder does. */
export function recordEvent(
  sim: { create(resource: string, obj: Obj): Obj },
  obj: Obj,
  type: "Normal" | "Warning",
  reason: string,
  message: string,
  component: string,
): void {
  const m = (obj.metadata ?? {}) as Obj;
  const at = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  sim.create("events", {
    metadata: { generateName: `${String(m.name)}.`, namespace: m.namespace },
    involvedObject: {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
    },
    type,
    reason,
    message,
    source: { component, ...(component === "kubelet" ? { host: "kube-sim-node" } : {}) },
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
    reportingComponent: component,
    reportingInstance: "kube-sim",
  });
}

/** Defaulting and the validation rules of built-in kinds that an operator is most likely to trip over. */
import type { StatusCause } from "./errors.ts";
import type { ResourceType } from "./resources.ts";

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {};
}

function is(rt: ResourceType, group: string, plural: string): boolean {
  return rt.group === group && rt.plural === plural && !rt.crd;
}

function defaultPodSpec(spec: Obj): void {
  spec.restartPolicy ??= "Always";
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= "ClusterFirst";
  spec.schedulerName ??= "default-scheduler";
  spec.securityContext ??= {};
  for (const c of [...((spec.initContainers as Obj[]) ?? []), ...((spec.containers as Obj[]) ?? [])]) {
    c.terminationMessagePath ??= "/dev/termination-log";
    c.terminationMessagePolicy ??= "File";
    c.imagePullPolicy ??=
      String(c.image ?? "").endsWith(":latest") || !String(c.image ?? "").includes(":") ? "Always" : "IfNotPresent";
    c.resources ??= {};
  }
}

/** Defaults applied on create and update, as the API server's defaulting functions do. */
export function defaultObject(rt: ResourceType, o: Obj, old?: Obj): void {
  const m = obj(o.metadata);
  if (is(rt, "", "secrets")) {
    o.type ??= "Opaque";
    const stringData = o.stringData as Record<string, string> | undefined;
    if (stringData) {
      const data = { ...((o.data as Record<string, string>) ?? {}) };
      for (const [k, v] of Object.entries(stringData)) data[k] = Buffer.from(v).toString("base64");
      o.data = data;
      delete o.stringData;
    }
  }
  if (is(rt, "", "namespaces")) {
    o.spec ??= { finalizers: ["kubernetes"] };
    o.status ??= { phase: "Active" };
  }
  if (is(rt, "", "pods")) {
    o.spec ??= {};
    defaultPodSpec(obj(o.spec));
    if (!old) o.status = { phase: "Pending", qosClass: "BestEffort" };
  }
  if (is(rt, "batch", "jobs")) {
    const spec = obj(o.spec);
    o.spec = spec;
    spec.parallelism ??= 1;
    spec.completions ??= 1;
    spec.backoffLimit ??= 6;
    spec.completionMode ??= "NonIndexed";
    spec.suspend ??= false;
    spec.podReplacementPolicy ??= "TerminatingOrFailed";
    if (!old) {
      // The API server labels the pod template with the job's identity and selects on it.
      const uid = String(m.uid);
      const template = obj(spec.template);
      spec.template = template;
      const tm = obj(template.metadata);
      template.metadata = tm;
      tm.labels = {
        ...obj(tm.labels),
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": String(m.name),
        "controller-uid": uid,
        "job-name": String(m.name),
      };
      spec.selector ??= { matchLabels: { "batch.kubernetes.io/controller-uid": uid } };
      spec.manualSelector = undefined;
      delete spec.manualSelector;
    }
    template(spec);
  }
}

function template(spec: Obj): void {
  const t = obj(spec.template);
  if (t.spec) defaultPodSpec(obj(t.spec));
}

/** Validation of built-in kinds (the CRD schemas are handled by ajv). */
export function validateBuiltin(rt: ResourceType, o: Obj, old?: Obj): StatusCause[] {
  const causes: StatusCause[] = [];
  const name = String(obj(o.metadata).name ?? "");
  if (is(rt, "batch", "jobs")) {
    if (name.length > 63) {
      causes.push({
        reason: "FieldValueInvalid",
        field: "metadata.name",
        message: `Invalid value: "${name}": must be no more than 63 characters`,
      });
    }
    const spec = obj(o.spec);
    const podSpec = obj(obj(spec.template).spec);
    const rp = podSpec.restartPolicy;
    if (rp !== "Never" && rp !== "OnFailure") {
      causes.push({
        reason: "FieldValueNotSupported",
        field: "spec.template.spec.restartPolicy",
        message: `Unsupported value: "${String(rp)}": supported values: "OnFailure", "Never"`,
      });
    }
    if (!Array.isArray(podSpec.containers) || podSpec.containers.length === 0) {
      causes.push({ reason: "FieldValueRequired", field: "spec.template.spec.containers", message: "Required value" });
    }
    if (old) {
      const os = obj(old.spec);
      for (const f of ["template", "selector", "completions", "completionMode"]) {
        if (JSON.stringify(spec[f]) !== JSON.stringify(os[f]))
          causes.push({
            reason: "FieldValueInvalid",
            field: `spec.${f}`,
            message: "Invalid value: field is immutable",
          });
      }
    }
  }
  if (is(rt, "", "pods")) {
    const spec = obj(o.spec);
    if (!Array.isArray(spec.containers) || spec.containers.length === 0)
      causes.push({ reason: "FieldValueRequired", field: "spec.containers", message: "Required value" });
  }
  if (is(rt, "", "events") && !o.involvedObject) {
    causes.push({ reason: "FieldValueRequired", field: "involvedObject", message: "Required value" });
  }
  if (is(rt, "coordination.k8s.io", "leases")) {
    const d = obj(o.spec).leaseDurationSeconds;
    if (d !== undefined && (typeof d !== "number" || d <= 0))
      causes.push({
        reason: "FieldValueInvalid",
        field: "spec.leaseDurationSeconds",
        message: "Invalid value: must be greater than 0",
      });
  }
  return causes;
}

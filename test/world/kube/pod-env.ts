/**
 * What a kubelet resolves before it starts a container: the environment (value, secretKeyRef, configMapKeyRef,
 * fieldRef, envFrom, `$(VAR)` expansion) and the volumes. Pure functions over the pod and a lookup.
 */

type Obj = Record<string, unknown>;

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
    resourceFieldRef?: { resource: string };
  };
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: EnvVar[];
  envFrom?: {
    prefix?: string;
    secretRef?: { name: string; optional?: boolean };
    configMapRef?: { name: string; optional?: boolean };
  }[];
  volumeMounts?: { name: string; mountPath: string; subPath?: string; readOnly?: boolean }[];
  terminationMessagePath?: string;
  terminationMessagePolicy?: string;
  /** "Always" on an init container: a native sidecar. */
  restartPolicy?: string;
  securityContext?: { readOnlyRootFilesystem?: boolean; runAsUser?: number; runAsGroup?: number };
  resources?: { limits?: Record<string, string | number>; requests?: Record<string, string | number> };
}

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50 };
const DECIMAL: Record<string, number> = { m: 1e-3, "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15 };

/** A resource.Quantity ("512Mi", "1G", "500m", 2) as a number (bytes, or cores for CPU). */
export function parseQuantity(q: string | number): number {
  if (typeof q === "number") return q;
  const m = /^([0-9.]+)(Ki|Mi|Gi|Ti|Pi|m|k|M|G|T|P)?$/.exec(q.trim());
  if (!m) throw new ConfigError(`invalid quantity ${q}`);
  const unit = m[2] ?? "";
  return Number(m[1]) * (BINARY[unit] ?? DECIMAL[unit] ?? 1);
}

export interface Volume {
  name: string;
  emptyDir?: Obj;
  secret?: { secretName: string; items?: { key: string; path: string }[]; optional?: boolean };
  configMap?: { name: string; items?: { key: string; path: string }[]; optional?: boolean };
}

/** Looks up a Secret's or ConfigMap's decoded data; undefined when the object does not exist. */
export type DataLookup = (kind: "Secret" | "ConfigMap", name: string) => Record<string, string> | undefined;

/** A container that cannot be configured yet (the kubelet's CreateContainerConfigError). */
export class ConfigError extends Error {}

/** Decoded Secret data: base64 `data` plus any `stringData` not yet folded in. */
export function secretData(secret: Obj): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((secret.data as Record<string, string>) ?? {})) {
    out[k] = Buffer.from(v, "base64").toString("utf8");
  }
  for (const [k, v] of Object.entries((secret.stringData as Record<string, string>) ?? {})) out[k] = v;
  return out;
}

function fieldRef(pod: Obj, path: string): string {
  const m = (pod.metadata ?? {}) as Obj;
  const spec = (pod.spec ?? {}) as Obj;
  const status = (pod.status ?? {}) as Obj;
  const mapRef = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (mapRef) return String(((m[mapRef[1]!] ?? {}) as Record<string, string>)[mapRef[2]!] ?? "");
  const known: Record<string, unknown> = {
    "metadata.name": m.name,
    "metadata.namespace": m.namespace,
    "metadata.uid": m.uid,
    "spec.nodeName": spec.nodeName,
    "spec.serviceAccountName": spec.serviceAccountName ?? "default",
    "status.podIP": status.podIP ?? "127.0.0.1",
    "status.hostIP": status.hostIP ?? "127.0.0.1",
  };
  if (!(path in known)) throw new ConfigError(`unsupported fieldRef ${path}`);
  return String(known[path] ?? "");
}

function keyRef(
  lookup: DataLookup,
  kind: "Secret" | "ConfigMap",
  ns: string,
  ref: { name: string; key: string; optional?: boolean },
) {
  const data = lookup(kind, ref.name);
  if (!data) {
    if (ref.optional) return undefined;
    throw new ConfigError(`${kind.toLowerCase()} "${ref.name}" not found`);
  }
  if (!(ref.key in data)) {
    if (ref.optional) return undefined;
    throw new ConfigError(`couldn't find key ${ref.key} in ${kind} ${ns}/${ref.name}`);
  }
  return data[ref.key];
}

/** `$(VAR)` references to earlier variables expand; `$$(` escapes; unknown references stay as written. */
export function expand(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$\(|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (!name) return "$(";
    return name in env ? env[name]! : whole;
  });
}

/** The container's environment, in the kubelet's order: envFrom first, then env (later entries win). */
export function resolveEnv(pod: Obj, container: Container, lookup: DataLookup): Record<string, string> {
  const ns = String(((pod.metadata ?? {}) as Obj).namespace ?? "");
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const ref = from.secretRef ?? from.configMapRef;
    if (!ref) continue;
    const kind = from.secretRef ? "Secret" : "ConfigMap";
    const data = lookup(kind, ref.name);
    if (!data) {
      if (ref.optional) continue;
      throw new ConfigError(`${kind.toLowerCase()} "${ref.name}" not found`);
    }
    for (const [k, v] of Object.entries(data)) env[`${from.prefix ?? ""}${k}`] = v;
  }
  for (const e of container.env ?? []) {
    let v: string | undefined;
    if (e.valueFrom?.secretKeyRef) v = keyRef(lookup, "Secret", ns, e.valueFrom.secretKeyRef);
    else if (e.valueFrom?.configMapKeyRef) v = keyRef(lookup, "ConfigMap", ns, e.valueFrom.configMapKeyRef);
    else if (e.valueFrom?.fieldRef) v = fieldRef(pod, e.valueFrom.fieldRef.fieldPath);
    else if (e.valueFrom?.resourceFieldRef) v = "0";
    else v = expand(e.value ?? "", env);
    if (v !== undefined) env[e.name] = v;
  }
  return env;
}

/** Replaces mount paths at the start of env values with host paths (longest mount path first). */
export function rewritePaths(env: Record<string, string>, mounts: Map<string, string>): Record<string, string> {
  const paths = [...mounts.keys()].sort((a, b) => b.length - a.length);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    const mp = paths.find((p) => v === p || v.startsWith(p.endsWith("/") ? p : `${p}/`));
    out[k] = mp ? mounts.get(mp)! + v.slice(mp.length) : v;
  }
  return out;
}

/** Runs the real helm v4 binary (from `make deps`) against charts/agentfactory and parses its output. */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";

const run = promisify(execFile);

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CHART_DIR = join(REPO_ROOT, "charts", "agentfactory");
export const HELM = join(REPO_ROOT, ".cache", "bin", "helm");

/** A rendered Kubernetes object, loosely typed: tests narrow what they look at. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are arbitrary YAML
  [field: string]: any;
}

export function assertHelm(): void {
  if (!existsSync(HELM))
    throw new Error(`helm not found at ${HELM}: run make deps (installs kubectl and helm into .cache/bin)`);
}

export interface RenderOptions {
  /** Values files, relative to the repository root or absolute. */
  values?: string[];
  /** `--set-string`: every value a string. */
  set?: Record<string, string>;
  /** `--set`: helm types the values (booleans, numbers). */
  setTyped?: Record<string, string>;
  release?: string;
  namespace?: string;
}

function helmArgs({ values = [], set = {}, setTyped = {} }: RenderOptions): string[] {
  const args: string[] = [];
  for (const file of values) args.push("--values", join(REPO_ROOT, file));
  for (const [key, value] of Object.entries(set)) args.push("--set-string", `${key}=${value}`);
  for (const [key, value] of Object.entries(setTyped)) args.push("--set", `${key}=${value}`);
  return args;
}

/** `helm template` → the rendered manifests as text. Rejects with helm's stderr on failure. */
export async function templateText(options: RenderOptions = {}): Promise<string> {
  assertHelm();
  const { release = "af", namespace = "agentfactory" } = options;
  try {
    const { stdout } = await run(
      HELM,
      ["template", release, CHART_DIR, "--namespace", namespace, "--kube-version", "1.33.0", ...helmArgs(options)],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    return stdout;
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`helm template failed: ${stderr ?? String(error)}`);
  }
}

/** `helm template` → parsed objects (empty documents dropped). */
export async function render(options: RenderOptions = {}): Promise<K8sObject[]> {
  const docs = parseAllDocuments(await templateText(options));
  const objects: K8sObject[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`);
    const value = doc.toJS();
    if (value) objects.push(value as K8sObject);
  }
  return objects;
}

/** `helm lint --strict`: resolves to its output, rejects (with the output) when lint fails. */
export async function lint(options: RenderOptions = {}): Promise<string> {
  assertHelm();
  try {
    const { stdout } = await run(HELM, ["lint", "--strict", CHART_DIR, ...helmArgs(options)]);
    return stdout;
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`helm lint failed:\n${stdout ?? ""}${stderr ?? ""}`);
  }
}

export function find(objects: K8sObject[], kind: string, nameSuffix = ""): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name.endsWith(nameSuffix));
  if (!found)
    throw new Error(
      `no ${kind} named *${nameSuffix} in ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(", ")}`,
    );
  return found;
}

/** The pod specs of every workload object (Deployment, StatefulSet, Job, CronJob, Pod). */
// biome-ignore lint/suspicious/noExplicitAny: pod specs are checked field by field
export function podSpecs(objects: K8sObject[]): { owner: string; spec: any }[] {
  // biome-ignore lint/suspicious/noExplicitAny: see above
  const specs: { owner: string; spec: any }[] = [];
  for (const o of objects) {
    const owner = `${o.kind}/${o.metadata.name}`;
    if (o.kind === "Pod") specs.push({ owner, spec: o.spec });
    else if (["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"].includes(o.kind))
      specs.push({ owner, spec: o.spec.template.spec });
    else if (o.kind === "CronJob") specs.push({ owner, spec: o.spec.jobTemplate.spec.template.spec });
  }
  return specs;
}

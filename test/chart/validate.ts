/**
 * Validates rendered objects against Kubernetes' own OpenAPI schemas (kubernetes-models, generated
 * from the API server's spec) and prometheus-operator's CRD schemas for ServiceMonitor and
 * PrometheusRule.
 */
import type { K8sObject } from "./helm.ts";

type Model = new (data: unknown) => { validate(): void };

/** The API groups the chart renders; a new one must be added here, on purpose. */
const MODULES: Record<string, () => Promise<unknown>> = {
  v1: () => import("kubernetes-models/v1"),
  "apps/v1": () => import("kubernetes-models/apps/v1"),
  "batch/v1": () => import("kubernetes-models/batch/v1"),
  "policy/v1": () => import("kubernetes-models/policy/v1"),
  "networking.k8s.io/v1": () => import("kubernetes-models/networking.k8s.io/v1"),
  "rbac.authorization.k8s.io/v1": () => import("kubernetes-models/rbac.authorization.k8s.io/v1"),
  "apiextensions.k8s.io/v1": () => import("kubernetes-models/apiextensions.k8s.io/v1"),
  "monitoring.coreos.com/v1": () => import("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1"),
};

async function modelFor(apiVersion: string, kind: string): Promise<Model> {
  const load = MODULES[apiVersion];
  if (!load) throw new Error(`no schema module for apiVersion ${apiVersion}`);
  const model = ((await load()) as Record<string, unknown>)[kind];
  if (typeof model !== "function") throw new Error(`no schema for ${apiVersion} ${kind}`);
  return model as Model;
}

/** Throws with the object's kind/name and the schema error when it does not validate. */
export async function validateObject(object: K8sObject): Promise<void> {
  const Model = await modelFor(object.apiVersion, object.kind);
  try {
    new Model(object).validate();
  } catch (error) {
    throw new Error(`${object.kind}/${object.metadata.name}: ${(error as Error).message}`);
  }
}

/**
 * The resource types the simulator serves: a handful of built-in kinds plus every CRD loaded from YAML.
 * Discovery documents (legacy and aggregated v2) are derived from this one registry.
 */
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  format?: string;
  priority?: number;
}

export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Subresources served, e.g. "status", "log". */
  subresources: string[];
  /** openAPIV3Schema of a CRD version; built-in kinds are not schema-validated. */
  schema?: Record<string, unknown>;
  printerColumns?: PrinterColumn[];
  crd: boolean;
  /** Storage shared with another type (events.k8s.io/v1 events live with core/v1 events). */
  storageKey: string;
}

export const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

export function apiVersionOf(rt: Pick<ResourceType, "group" | "version">): string {
  return rt.group ? `${rt.group}/${rt.version}` : rt.version;
}

/** `agentruns.agentfactory.dev`, `jobs.batch`, `pods` — the qualified resource name used in Status messages. */
export function qualifiedName(rt: ResourceType): string {
  return rt.group ? `${rt.plural}.${rt.group}` : rt.plural;
}

function builtin(
  group: string,
  version: string,
  kind: string,
  plural: string,
  extra: Partial<ResourceType> = {},
): ResourceType {
  return {
    group,
    version,
    kind,
    listKind: `${kind}List`,
    plural,
    singular: kind.toLowerCase(),
    namespaced: true,
    shortNames: [],
    categories: [],
    subresources: [],
    crd: false,
    storageKey: `${group}/${plural}`,
    ...extra,
  };
}

export function builtinTypes(): ResourceType[] {
  return [
    builtin("", "v1", "Namespace", "namespaces", { namespaced: false, shortNames: ["ns"], subresources: ["status"] }),
    builtin("", "v1", "Pod", "pods", { shortNames: ["po"], categories: ["all"], subresources: ["status", "log"] }),
    builtin("", "v1", "Secret", "secrets"),
    builtin("", "v1", "ConfigMap", "configmaps", { shortNames: ["cm"] }),
    builtin("", "v1", "ServiceAccount", "serviceaccounts", { shortNames: ["sa"] }),
    builtin("", "v1", "Event", "events", { shortNames: ["ev"], storageKey: "events" }),
    builtin("batch", "v1", "Job", "jobs", { categories: ["all"], subresources: ["status"] }),
    builtin("coordination.k8s.io", "v1", "Lease", "leases"),
    builtin("events.k8s.io", "v1", "Event", "events", { shortNames: ["ev"], storageKey: "events" }),
  ];
}

interface CrdDoc {
  kind?: string;
  spec?: {
    group: string;
    scope: string;
    names: {
      kind: string;
      listKind?: string;
      plural: string;
      singular?: string;
      shortNames?: string[];
      categories?: string[];
    };
    versions: {
      name: string;
      served?: boolean;
      subresources?: { status?: unknown };
      additionalPrinterColumns?: PrinterColumn[];
      schema?: { openAPIV3Schema?: Record<string, unknown> };
    }[];
  };
}

/** Every served version of every CustomResourceDefinition in the YAML files. */
export function loadCrdTypes(files: string[]): ResourceType[] {
  const out: ResourceType[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
      const crd = doc.toJS() as CrdDoc | null;
      if (crd?.kind !== "CustomResourceDefinition" || !crd.spec) continue;
      const { group, names, scope } = crd.spec;
      for (const v of crd.spec.versions) {
        if (v.served === false) continue;
        out.push({
          group,
          version: v.name,
          kind: names.kind,
          listKind: names.listKind ?? `${names.kind}List`,
          plural: names.plural,
          singular: names.singular ?? names.kind.toLowerCase(),
          namespaced: scope === "Namespaced",
          shortNames: names.shortNames ?? [],
          categories: names.categories ?? [],
          subresources: v.subresources?.status !== undefined ? ["status"] : [],
          schema: v.schema?.openAPIV3Schema,
          printerColumns: v.additionalPrinterColumns ?? [],
          crd: true,
          storageKey: `${group}/${names.plural}`,
        });
      }
    }
  }
  return out;
}

/** Groups in discovery order: core first, then named groups in registration order. */
function groups(types: ResourceType[]): Map<string, ResourceType[]> {
  const m = new Map<string, ResourceType[]>();
  for (const t of types) {
    const list = m.get(t.group) ?? [];
    list.push(t);
    m.set(t.group, list);
  }
  return m;
}

function versionsOf(types: ResourceType[]): string[] {
  return [...new Set(types.map((t) => t.version))];
}

export function apiVersionsDoc(): unknown {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "127.0.0.1" }],
  };
}

export function apiGroupListDoc(types: ResourceType[]): unknown {
  const out = [];
  for (const [group, list] of groups(types)) {
    if (!group) continue;
    const versions = versionsOf(list).map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
    out.push({ name: group, versions, preferredVersion: versions[0] });
  }
  return { kind: "APIGroupList", apiVersion: "v1", groups: out };
}

export function apiResourceListDoc(types: ResourceType[], group: string, version: string): unknown | undefined {
  const list = types.filter((t) => t.group === group && t.version === version);
  if (list.length === 0) return undefined;
  const resources = [];
  for (const t of list) {
    resources.push({
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: VERBS,
      ...(t.shortNames.length ? { shortNames: t.shortNames } : {}),
      ...(t.categories.length ? { categories: t.categories } : {}),
    });
    for (const sub of t.subresources) {
      resources.push({
        name: `${t.plural}/${sub}`,
        singularName: "",
        namespaced: t.namespaced,
        kind: sub === "log" ? "Pod" : t.kind,
        verbs: sub === "log" ? ["get"] : ["get", "patch", "update"],
      });
    }
  }
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: group ? `${group}/${version}` : version,
    resources,
  };
}

/** apidiscovery.k8s.io/v2 APIGroupDiscoveryList for `/api` (core) or `/apis` (named groups). */
export function aggregatedDiscoveryDoc(types: ResourceType[], core: boolean): unknown {
  const items = [];
  for (const [group, list] of groups(types)) {
    if (core !== (group === "")) continue;
    items.push({
      metadata: { name: group, creationTimestamp: null },
      versions: versionsOf(list).map((version) => ({
        version,
        freshness: "Current",
        resources: list
          .filter((t) => t.version === version)
          .map((t) => ({
            resource: t.plural,
            responseKind: { group, version, kind: t.kind },
            scope: t.namespaced ? "Namespaced" : "Cluster",
            singularResource: t.singular,
            verbs: VERBS,
            ...(t.shortNames.length ? { shortNames: t.shortNames } : {}),
            ...(t.categories.length ? { categories: t.categories } : {}),
            ...(t.subresources.length
              ? {
                  subresources: t.subresources.map((s) => ({
                    subresource: s,
                    responseKind:
                      s === "log" ? { group: "", version: "v1", kind: "string" } : { group, version, kind: t.kind },
                    verbs: s === "log" ? ["get"] : ["get", "patch", "update"],
                  })),
                }
              : {}),
          })),
      })),
    });
  }
  return { kind: "APIGroupDiscoveryList", apiVersion: "apidiscovery.k8s.io/v2", metadata: {}, items };
}

const AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/** The discovery document for a path (`/api`, `/apis`, `/api/v1`, `/apis/<g>`, `/apis/<g>/<v>`), if it is one. */
export function discoveryResponse(
  types: ResourceType[],
  path: string,
  accept: string,
): { body: unknown; contentType: string } | undefined {
  const json = (body: unknown) => ({ body, contentType: "application/json" });
  const aggregated = accept.includes("as=APIGroupDiscoveryList") && accept.includes("v=v2");
  if (path === "/api" || path === "/api/") {
    return aggregated ? { body: aggregatedDiscoveryDoc(types, true), contentType: AGGREGATED } : json(apiVersionsDoc());
  }
  if (path === "/apis" || path === "/apis/") {
    return aggregated
      ? { body: aggregatedDiscoveryDoc(types, false), contentType: AGGREGATED }
      : json(apiGroupListDoc(types));
  }
  const gv = /^\/api\/(v1)\/?$/.exec(path) ?? /^\/apis\/([^/]+\/[^/]+)\/?$/.exec(path);
  if (gv) {
    const [group, version] = gv[1]!.includes("/") ? gv[1]!.split("/") : ["", gv[1]!];
    const doc = apiResourceListDoc(types, group!, version!);
    return doc ? json(doc) : undefined;
  }
  const g = /^\/apis\/([^/]+)\/?$/.exec(path);
  if (g) {
    const groups = (apiGroupListDoc(types) as { groups: { name: string }[] }).groups;
    const found = groups.find((x) => x.name === g[1]);
    return found ? json({ kind: "APIGroup", apiVersion: "v1", ...found }) : undefined;
  }
  return undefined;
}

/**
 * Minimal OpenAPI v3 documents: kubectl (create/apply with the default --validate=strict) reads them only to
 * learn that PATCH supports the `fieldValidation` query parameter, then lets the server validate.
 */
import { createHash } from "node:crypto";
import { apiVersionOf, type ResourceType } from "./resources.ts";

function gvPath(rt: Pick<ResourceType, "group" | "version">): string {
  return rt.group ? `apis/${rt.group}/${rt.version}` : `api/${rt.version}`;
}

export function openApiRoot(types: ResourceType[]): unknown {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const t of types) {
    const p = gvPath(t);
    const hash = createHash("sha256")
      .update(JSON.stringify(openApiGroupVersion(types, p)))
      .digest("hex")
      .slice(0, 16);
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
  }
  return { paths };
}

/** The document for one group-version path such as `apis/batch/v1`; undefined when unknown. */
export function openApiGroupVersion(types: ResourceType[], path: string): unknown | undefined {
  const list = types.filter((t) => gvPath(t) === path);
  if (list.length === 0) return undefined;
  const paths: Record<string, unknown> = {};
  const params = ["dryRun", "fieldManager", "fieldValidation", "force", "pretty"].map((name) => ({
    name,
    in: "query",
    schema: { type: name === "force" ? "boolean" : "string", uniqueItems: true },
  }));
  for (const t of list) {
    const gvk = { group: t.group, version: t.version, kind: t.kind };
    const base = `/${path}${t.namespaced ? "/namespaces/{namespace}" : ""}/${t.plural}`;
    const op = (action: string) => ({
      operationId: `${action}${t.kind}`,
      "x-kubernetes-action": action,
      "x-kubernetes-group-version-kind": gvk,
      parameters: params,
      responses: { "200": { description: "OK" } },
    });
    paths[base] = { post: op("post"), get: op("list") };
    paths[`${base}/{name}`] = { get: op("get"), put: op("put"), patch: op("patch"), delete: op("delete") };
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: "v1.33.0" },
    paths,
    components: { schemas: {} },
    "x-api-version": apiVersionOf(list[0]!),
  };
}

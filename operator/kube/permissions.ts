/**
 * What the operator may do, asked of the API server at start (SelfSubjectAccessReview, one per permission),
 * so a Role missing a verb stops it with a message naming what is missing instead of a controller that
 * half-works (a forbidden watch retries forever; a forbidden create fails one run at a time).
 *
 * @example
 *   const missing = await missingPermissions(kc.makeApiClient(AuthorizationV1Api), "agentfactory", { leaderElection: true });
 *   if (missing.length) throw new Error(describeMissing(missing, "agentfactory"));
 */
import type { AuthorizationV1Api } from "@kubernetes/client-node";

export interface Permission {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
}

const p = (group: string, resource: string, verbs: string[], subresource?: string): Permission[] =>
  verbs.map((verb) => ({ verb, group, resource, ...(subresource ? { subresource } : {}) }));

/** Every call the operator makes in the runs namespace (charts/agentfactory/templates/rbac grants them). */
export function requiredPermissions(opts: { leaderElection: boolean }): Permission[] {
  return [
    ...p("agentfactory.dev", "agentruns", ["get", "list", "watch", "create", "patch"]),
    ...p("agentfactory.dev", "agentruns", ["update"], "status"),
    ...p("batch", "jobs", ["list", "watch", "create", "delete"]),
    ...p("", "pods", ["list", "watch"]),
    ...p("", "secrets", ["create", "update"]),
    ...p("", "events", ["create", "list", "watch"]),
    ...(opts.leaderElection ? p("coordination.k8s.io", "leases", ["get", "create", "update"]) : []),
  ];
}

export function formatPermission(x: Permission): string {
  const res = `${x.resource}${x.subresource ? `/${x.subresource}` : ""}${x.group ? `.${x.group}` : ""}`;
  return `${x.verb} ${res}`;
}

/** The permissions the API server denies this identity in `namespace` (empty: all granted). */
export async function missingPermissions(
  api: AuthorizationV1Api,
  namespace: string,
  opts: { leaderElection: boolean },
): Promise<Permission[]> {
  const wanted = requiredPermissions(opts);
  const answers = await Promise.all(
    wanted.map((x) =>
      api.createSelfSubjectAccessReview({
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SelfSubjectAccessReview",
          spec: {
            resourceAttributes: {
              namespace,
              verb: x.verb,
              group: x.group,
              resource: x.resource,
              ...(x.subresource ? { subresource: x.subresource } : {}),
            },
          },
        },
      }),
    ),
  );
  return wanted.filter((_, i) => answers[i]?.status?.allowed !== true);
}

export function describeMissing(missing: Permission[], namespace: string): string {
  return (
    `the operator's ServiceAccount lacks ${missing.length} permission(s) in namespace ${namespace}: ` +
    `${missing.map(formatPermission).join(", ")} (the chart's Role grants them: charts/agentfactory/templates/rbac)`
  );
}

import type { AuthorizationV1Api, V1SelfSubjectAccessReview } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { describeMissing, formatPermission, missingPermissions, requiredPermissions } from "./permissions.ts";

/** An access-review API that denies the listed `verb resource` strings. */
function reviews(denied: string[]) {
  const asked: V1SelfSubjectAccessReview[] = [];
  const api = {
    createSelfSubjectAccessReview: async ({ body }: { body: V1SelfSubjectAccessReview }) => {
      asked.push(body);
      const a = body.spec.resourceAttributes!;
      const key = formatPermission({
        verb: a.verb!,
        group: a.group ?? "",
        resource: a.resource!,
        ...(a.subresource ? { subresource: a.subresource } : {}),
      });
      return { ...body, status: { allowed: !denied.includes(key) } };
    },
  } as unknown as AuthorizationV1Api;
  return { api, asked };
}

describe("the operator's permission check", () => {
  it("asks one review per verb in the runs namespace and reports only what is denied", async () => {
    const { api, asked } = reviews(["watch jobs.batch", "update agentruns/status.agentfactory.dev"]);
    const missing = await missingPermissions(api, "runs", { leaderElection: true });
    expect(missing.map(formatPermission)).toEqual(["update agentruns/status.agentfactory.dev", "watch jobs.batch"]);
    expect(asked).toHaveLength(requiredPermissions({ leaderElection: true }).length);
    expect(new Set(asked.map((r) => r.spec.resourceAttributes?.namespace))).toEqual(new Set(["runs"]));
    expect(describeMissing(missing, "runs")).toContain("lacks 2 permission(s) in namespace runs");
  });

  it("asks about leases only with leader election, and finds nothing missing when all is granted", async () => {
    const { api, asked } = reviews([]);
    expect(await missingPermissions(api, "runs", { leaderElection: false })).toEqual([]);
    expect(asked.some((r) => r.spec.resourceAttributes?.resource === "leases")).toBe(false);
    expect(requiredPermissions({ leaderElection: true }).map(formatPermission)).toContain(
      "update leases.coordination.k8s.io",
    );
  });
});

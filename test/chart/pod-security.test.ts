import { describe, expect, it } from "vitest";
import { restrictedViolations } from "./pod-security.ts";
import { validateObject } from "./validate.ts";

const good = {
  securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
  containers: [
    {
      name: "app",
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
    },
  ],
  volumes: [{ name: "tmp", emptyDir: {} }],
};

describe("restrictedViolations", () => {
  it("admits a pod that meets the restricted profile", () => {
    expect(restrictedViolations(good)).toEqual([]);
  });

  it("reports each baseline and restricted violation", () => {
    const bad = {
      hostNetwork: true,
      securityContext: { runAsUser: 0, sysctls: [{ name: "kernel.msgmax", value: "1" }] },
      containers: [
        {
          name: "app",
          ports: [{ containerPort: 80, hostPort: 80 }],
          securityContext: { privileged: true, capabilities: { add: ["SYS_ADMIN"] } },
        },
      ],
      volumes: [{ name: "host", hostPath: { path: "/" } }],
    };
    const found = restrictedViolations(bad).join("\n");
    for (const expected of [
      "hostNetwork is true",
      "volume host is hostPath",
      "unsafe sysctl kernel.msgmax",
      "pod runAsUser is 0",
      "container app is privileged",
      "uses hostPort 80",
      "allowPrivilegeEscalation must be false",
      "runAsNonRoot must be true",
      "seccompProfile must be RuntimeDefault",
      "capabilities must drop ALL",
      "adds capability SYS_ADMIN",
    ])
      expect(found).toContain(expected);
  });

  it("lets a container undo the pod's runAsNonRoot and catches it", () => {
    const spec = structuredClone(good);
    Object.assign(spec.containers[0]!.securityContext, { runAsNonRoot: false });
    expect(restrictedViolations(spec)).toEqual(["container app: runAsNonRoot must be true (pod or container)"]);
  });
});

describe("validateObject", () => {
  it("rejects objects that break the Kubernetes schema", async () => {
    await expect(
      validateObject({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "s" },
        spec: { ports: [{ port: "http" }] },
      }),
    ).rejects.toThrow(/Service\/s: .*port/);
    await expect(
      validateObject({
        apiVersion: "monitoring.coreos.com/v1",
        kind: "PrometheusRule",
        metadata: { name: "r" },
        spec: { groups: [{ name: "g", rules: [{ alert: "A" }] }] },
      }),
    ).rejects.toThrow(/expr/);
    await expect(
      validateObject({ apiVersion: "example.com/v1", kind: "Thing", metadata: { name: "t" } }),
    ).rejects.toThrow(/no schema module/);
  });
});

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { PatternsJobConfigSchema } from "../../operator/patterns-job.ts";
import { CHART_DIR, find, HELM, REPO_ROOT, render } from "../chart/helm.ts";

/** The chart's pattern-extraction CronJob against the job's own configuration schema. */

const FULL = "charts/agentfactory/ci/full-values.yaml";
const DEFAULT = "charts/agentfactory/ci/default-values.yaml";

// biome-ignore lint/suspicious/noExplicitAny: rendered YAML
const containerOf = (cronJob: any) => cronJob.spec.jobTemplate.spec.template.spec.containers[0];

describe("patterns CronJob", () => {
  it("is off by default", async () => {
    expect((await render({ values: [DEFAULT] })).filter((o) => o.kind === "CronJob")).toEqual([]);
  });

  it("runs the job weekly, one at a time, with env the job reads and the App key by reference", async () => {
    const cj = find(await render({ values: [FULL] }), "CronJob", "-patterns");
    expect(cj.spec.schedule).toBe("0 23 * * 0");
    expect(cj.spec.concurrencyPolicy).toBe("Forbid");
    const c = containerOf(cj);
    expect(c.command).toEqual(["node", "/opt/agentfactory/patterns-job.mjs"]);
    // biome-ignore lint/suspicious/noExplicitAny: rendered YAML
    const env = new Map<string, any>(c.env.map((e: any) => [e.name, e]));
    const known = Object.keys(PatternsJobConfigSchema.shape);
    expect([...env.keys()].filter((n) => !known.includes(n))).toEqual([]);
    expect(env.get("RULES_REPO").value).toBe("acme/web");
    expect(env.get("WINDOW_DAYS").value).toBe("60");
    expect(env.get("GITHUB_APP_ID").valueFrom.secretKeyRef).toEqual({ name: "gh-app", key: "id" });
    const keyFile = env.get("GITHUB_APP_PRIVATE_KEY_FILE").value as string;
    const mount = c.volumeMounts.find((m: { name: string }) => m.name === "github-app");
    expect(keyFile).toBe(`${mount.mountPath}/key.pem`);
    expect(cj.spec.jobTemplate.spec.template.spec.automountServiceAccountToken).toBe(false);
  });

  it("lets the job reach NATS when NetworkPolicies are on", async () => {
    const objects = await render({ values: [FULL] });
    const policies = objects.filter((o) => o.kind === "NetworkPolicy");
    const natsPolicies = policies.filter(
      (p) => p.spec.podSelector.matchLabels?.["app.kubernetes.io/component"] === "nats",
    );
    const admits = natsPolicies.some((p) =>
      // biome-ignore lint/suspicious/noExplicitAny: rendered YAML
      (p.spec.ingress ?? []).some((rule: any) =>
        // biome-ignore lint/suspicious/noExplicitAny: rendered YAML
        (rule.from ?? []).some((f: any) => f.podSelector?.matchLabels?.["app.kubernetes.io/component"] === "patterns"),
      ),
    );
    expect(admits).toBe(true);
    const own = policies.find((p) => p.metadata.name === "af-agentfactory-patterns")!;
    expect(own.spec.ingress).toEqual([]);
    expect(own.spec.egress.flatMap((r: { ports: { port: number }[] }) => r.ports.map((p) => p.port))).toEqual([
      53, 53, 4222, 443,
    ]);
  });

  it("refuses to render without a rules repository", async () => {
    const helm = promisify(execFile)(
      HELM,
      ["template", "af", CHART_DIR, "-f", DEFAULT, "--set", "patterns.enabled=true"],
      {
        cwd: REPO_ROOT,
      },
    );
    await expect(helm).rejects.toThrow(/patterns.rulesRepo \(owner\/name\) is required/);
  });
});

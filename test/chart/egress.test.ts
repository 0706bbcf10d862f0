/**
 * The egress gateway's part of the chart, rendered and linted by the real helm: off by default; when
 * on, a Deployment (2 replicas), Service, ServiceAccount, ConfigMap, PodDisruptionBudget and
 * NetworkPolicy that validate against the Kubernetes schemas, run under Pod Security restricted,
 * take every secret by reference, and configure exactly what egress/config.ts reads.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { EgressEnv, loadConfig } from "../../egress/config.ts";
import { find, type K8sObject, lint, podSpecs, render, templateText } from "./helm.ts";
import { restrictedViolations } from "./pod-security.ts";
import { validateObject } from "./validate.ts";

const DEFAULT = "charts/agentfactory/ci/default-values.yaml";
const FULL = "charts/agentfactory/ci/full-values.yaml";
const ON = "charts/agentfactory/ci/egress-values.yaml";
const egressObjects = (objects: K8sObject[]) =>
  objects.filter((o) => o.metadata.labels?.["app.kubernetes.io/component"] === "egress");

describe("egress gateway in the chart", () => {
  let on: K8sObject[];
  let full: K8sObject[];
  beforeAll(async () => {
    on = await render({ values: [DEFAULT, ON] });
    full = await render({
      values: [FULL, ON],
      set: { "egress.connectAllow[0]": "registry.npmjs.org", "egress.model.baseUrl": "https://openrouter.ai/api" },
    });
  });

  it("is off by default", async () => {
    expect(egressObjects(await render({ values: [DEFAULT] }))).toEqual([]);
  });

  it("passes helm lint --strict when on", async () => {
    await expect(lint({ values: [DEFAULT, ON] })).resolves.toContain("0 chart(s) failed");
    await expect(lint({ values: [FULL, ON] })).resolves.toContain("0 chart(s) failed");
  });

  it("renders its objects, each valid against the Kubernetes schemas", async () => {
    const kinds = egressObjects(on)
      .map((o) => o.kind)
      .sort();
    expect(kinds).toEqual([
      "ConfigMap",
      "Deployment",
      "NetworkPolicy",
      "PodDisruptionBudget",
      "Service",
      "ServiceAccount",
    ]);
    for (const o of [...egressObjects(on), ...egressObjects(full)]) await validateObject(o);
  });

  it("runs 2 replicas under Pod Security restricted, token-less, secrets by reference only", () => {
    const deployment = find(on, "Deployment", "-egress");
    expect(deployment.spec.replicas).toBe(2);
    const spec = deployment.spec.template.spec;
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.serviceAccountName).toBe(find(on, "ServiceAccount", "-egress").metadata.name);
    expect(find(on, "ServiceAccount", "-egress").automountServiceAccountToken).toBe(false);
    const pod = podSpecs([deployment])[0];
    expect(restrictedViolations(pod?.spec)).toEqual([]);
    // The only Secret is the chart's generated NATS credentials (core/nats-auth.ts).
    expect(on.filter((o) => o.kind === "Secret").map((o) => o.metadata.name)).toEqual(["af-agentfactory-nats-auth"]);
    const env = new Map(
      spec.containers[0].env.map((e: { name: string; valueFrom?: unknown }) => [e.name, e.valueFrom]),
    );
    expect(env.get("ATTEMPT_TOKEN_KEY")).toEqual({ secretKeyRef: { name: "egress-keys", key: "attempt-token-key" } });
    expect(env.get("ADMIN_TOKEN")).toEqual({ secretKeyRef: { name: "egress-keys", key: "admin-token" } });
    expect(env.get("MODEL_API_KEY")).toEqual({
      secretKeyRef: { name: "agentfactory-model", key: "anthropic-api-key" },
    });
    // The git mirrors live on an emptyDir (the root filesystem is read-only).
    const mounts = spec.containers[0].volumeMounts.map((m: { mountPath: string }) => m.mountPath);
    expect(mounts).toContain("/var/cache/agentfactory-egress");
    expect(deployment.spec.template.metadata.annotations["checksum/config"]).toMatch(/^[0-9a-f]{64}$/);
  });

  it("configures exactly what egress/config.ts reads, and that configuration loads", () => {
    for (const objects of [on, full]) {
      const config = find(objects, "ConfigMap", "-egress").data as Record<string, string>;
      const container = find(objects, "Deployment", "-egress").spec.template.spec.containers[0];
      const known = Object.keys(EgressEnv.shape);
      const names = [...Object.keys(config), ...container.env.map((e: { name: string }) => e.name)];
      expect(names.filter((n) => !known.includes(n))).toEqual([]);
      const { config: loaded } = loadConfig({
        ...config,
        ATTEMPT_TOKEN_KEY: "k".repeat(32),
        ADMIN_TOKEN: "admin-token-0123456789",
        MODEL_API_KEY: "sk-ant-x",
      });
      expect(loaded.forge.protectedPaths).toEqual([".github/workflows/**", ".claude/settings.json"]);
    }
    const onConfig = find(on, "ConfigMap", "-egress").data;
    expect(onConfig).toMatchObject({
      PORT: "8080",
      ADMIN_PORT: "8081",
      METRICS_PORT: "9090",
      MODEL_BASE_URL: "https://api.anthropic.com",
      FORGE_API_URL: "https://api.github.com",
      FORGE_GIT_URL: "https://github.com",
      CONNECT_ALLOW: "",
    });
    // NATS as every client gets it: its own user and password (core/nats-auth.ts).
    const env = new Map(
      find(on, "Deployment", "-egress").spec.template.spec.containers[0].env.map(
        (e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom],
      ),
    );
    expect(env.get("NATS_URL")).toBe("nats://af-agentfactory-nats.agentfactory.svc:4222");
    expect(env.get("NATS_USER")).toBe("egress");
    expect(env.get("NATS_PASSWORD")).toEqual({
      secretKeyRef: { name: "af-agentfactory-nats-auth", key: "egress-password" },
    });
    const fullConfig = find(full, "ConfigMap", "-egress").data;
    expect(fullConfig).toMatchObject({
      MODEL_BASE_URL: "https://openrouter.ai/api",
      FORGE_API_URL: "https://ghe.example.com/api/v3",
      FORGE_GIT_URL: "https://ghe.example.com",
      CONNECT_ALLOW: "registry.npmjs.org",
    });
  });

  it("serves proxy, admin and metrics ports through its Service, selecting its pods", () => {
    const service = find(on, "Service", "-egress");
    const labels = find(on, "Deployment", "-egress").spec.template.metadata.labels;
    for (const [k, v] of Object.entries(service.spec.selector as Record<string, string>)) expect(labels[k]).toBe(v);
    expect(service.spec.ports.map((p: { name: string; port: number }) => `${p.name}:${p.port}`)).toEqual([
      "proxy:80",
      "admin:8081",
      "metrics:9090",
    ]);
    const pdb = find(on, "PodDisruptionBudget", "-egress");
    expect(pdb.spec.selector.matchLabels["app.kubernetes.io/component"]).toBe("egress");
  });

  it("is scraped through a ServiceMonitor on its metrics port when monitoring is on", () => {
    const monitor = find(full, "ServiceMonitor", "-egress");
    const service = find(full, "Service", "-egress");
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: "metrics", path: "/metrics" });
    for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels as Record<string, string>)) {
      expect(service.metadata.labels?.[k]).toBe(v);
    }
    expect(on.some((o) => o.kind === "ServiceMonitor")).toBe(false);
  });

  it("takes runner traffic on the proxy port, the operator's on the admin port, and reaches NATS", () => {
    const policy = find(full, "NetworkPolicy", "-egress");
    const [proxy, admin] = policy.spec.ingress;
    expect(proxy.ports).toEqual([{ protocol: "TCP", port: 8080 }]);
    expect(proxy.from[0].podSelector.matchExpressions).toEqual([{ key: "agentfactory.dev/run", operator: "Exists" }]);
    expect(proxy.from[0].namespaceSelector.matchLabels).toEqual({ "kubernetes.io/metadata.name": "agentfactory-runs" });
    expect(admin.ports).toEqual([{ protocol: "TCP", port: 8081 }]);
    expect(admin.from).toEqual([
      {
        podSelector: {
          matchLabels: {
            "app.kubernetes.io/name": "agentfactory",
            "app.kubernetes.io/instance": "af",
            "app.kubernetes.io/component": "operator",
          },
        },
      },
    ]);
    const out = policy.spec.egress.flatMap((r: { ports: { port: number }[] }) => r.ports.map((p) => p.port));
    expect(out.sort()).toEqual([443, 4222, 53, 53].sort());
    // Same namespace: no namespaceSelector (it would select nothing but the runs namespace).
    expect(find(on, "NetworkPolicy", "-egress").spec.ingress[0].from[0].namespaceSelector).toBeUndefined();
    const nats = find(on, "NetworkPolicy", "-nats");
    const clients = nats.spec.ingress[0].from.map(
      (f: { podSelector: { matchLabels: Record<string, string> } }) =>
        f.podSelector.matchLabels["app.kubernetes.io/component"],
    );
    expect(clients).toEqual(["operator", "gateway", "egress"]);
  });

  it("wires the operator to it: URLs of the egress Service, the admin token and attempt key by reference", async () => {
    const envOf = (objects: K8sObject[]) =>
      Object.fromEntries(
        (
          find(objects, "Deployment", "-operator").spec.template.spec.containers[0].env as {
            name: string;
            value?: string;
          }[]
        ).map((e) => [e.name, e]),
      );
    const env = envOf(on);
    const svc = find(on, "Service", "-egress").metadata.name;
    expect(env.EGRESS_ENABLED).toMatchObject({ value: "true" });
    expect(env.EGRESS_URL).toMatchObject({
      value: `http://${svc}.${find(on, "Service", "-egress").metadata.namespace}.svc:80`,
    });
    expect(env.EGRESS_ADMIN_URL?.value).toMatch(new RegExp(`^http://${svc}\\..*\\.svc:8081$`));
    expect(env.EGRESS_ADMIN_TOKEN).toEqual({
      name: "EGRESS_ADMIN_TOKEN",
      valueFrom: { secretKeyRef: { name: "egress-keys", key: "admin-token" } },
    });
    expect(env.EGRESS_ATTEMPT_TOKEN_KEY).toEqual({
      name: "EGRESS_ATTEMPT_TOKEN_KEY",
      valueFrom: { secretKeyRef: { name: "egress-keys", key: "attempt-token-key" } },
    });
    expect(envOf(await render({ values: [DEFAULT] })).EGRESS_ENABLED).toBeUndefined();
  });

  it("narrows runner pods to the egress pods' proxy port and DNS; the operator may reach its admin port", async () => {
    const egressPods = {
      matchLabels: {
        "app.kubernetes.io/name": "agentfactory",
        "app.kubernetes.io/instance": "af",
        "app.kubernetes.io/component": "egress",
      },
    };
    const runner = find(full, "NetworkPolicy", "-runner");
    const rules = runner.spec.egress as { ports: { port: number }[]; to?: object[] }[];
    // full-values adds an extraEgress.runner rule (8443) of its own; nothing else is open.
    expect(rules.flatMap((r) => r.ports.map((p) => p.port)).sort()).toEqual([53, 53, 8080, 8443].sort());
    const plain = find(on, "NetworkPolicy", "-runner").spec.egress as { ports: { port: number }[] }[];
    expect(plain.flatMap((r) => r.ports.map((p) => p.port)).sort()).toEqual([53, 53, 8080].sort());
    const proxy = rules.find((r) => r.ports.some((p) => p.port === 8080))!;
    expect(proxy.to).toEqual([
      {
        podSelector: egressPods,
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "agentfactory" } },
      },
    ]);
    expect(JSON.stringify(runner.spec.egress)).not.toContain("ipBlock");
    // Off: HTTPS to the configured blocks, as before.
    const off = find(await render({ values: [FULL] }), "NetworkPolicy", "-runner");
    expect(JSON.stringify(off.spec.egress)).toContain("ipBlock");
    const operator = find(full, "NetworkPolicy", "-operator");
    expect(operator.spec.egress).toContainEqual({
      ports: [{ protocol: "TCP", port: 8081 }],
      to: [{ podSelector: egressPods }],
    });
  });

  it("refuses to render without its Secret, or with a malformed allowlist entry", async () => {
    await expect(templateText({ values: [DEFAULT, ON], set: { "secrets.egress.existingSecret": "" } })).rejects.toThrow(
      /secrets.egress.existingSecret is required/,
    );
    await expect(
      templateText({ values: [DEFAULT, ON], set: { "egress.connectAllow[0]": "https://evil.example.com/" } }),
    ).rejects.toThrow(/connectAllow/);
  });
});

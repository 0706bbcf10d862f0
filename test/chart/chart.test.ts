/**
 * The Helm chart, rendered by the real helm v4 under several values files: lint, Kubernetes schema
 * validation of every object, Pod Security "restricted", secrets only by reference, least-privilege
 * RBAC, NetworkPolicies, monitoring objects and the embedded CRD.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { NATS_CLIENTS, natsPasswordEnv } from "../../core/nats-auth.ts";
import { GatewayEnv } from "../../gateway/config.ts";
import { ConfigSchema } from "../../operator/config.ts";
import { CHART_DIR, find, type K8sObject, lint, podSpecs, REPO_ROOT, render, templateText } from "./helm.ts";
import { restrictedViolations } from "./pod-security.ts";
import { validateObject } from "./validate.ts";

const VALUES = {
  default: "charts/agentfactory/ci/default-values.yaml",
  full: "charts/agentfactory/ci/full-values.yaml",
  minimal: "charts/agentfactory/ci/minimal-values.yaml",
  kind: "test/e2e-kind/values.yaml",
} as const;
type Variant = keyof typeof VALUES;
const DATASOURCE_VARIABLE = ["$", "{datasource}"].join("");

const rendered = {} as Record<Variant, K8sObject[]>;
beforeAll(async () => {
  for (const [variant, file] of Object.entries(VALUES)) rendered[variant as Variant] = await render({ values: [file] });
});

// biome-ignore lint/suspicious/noExplicitAny: containers as rendered YAML
const container = (o: K8sObject, name: string): any => {
  const spec = o.spec.template.spec;
  // biome-ignore lint/suspicious/noExplicitAny: see above
  const c = spec.containers.find((c: any) => c.name === name);
  if (!c) throw new Error(`${o.metadata.name} has no container ${name}`);
  return c;
};
// biome-ignore lint/suspicious/noExplicitAny: env entries as rendered YAML
const envOf = (c: any): Map<string, any> => new Map(c.env.map((e: any) => [e.name, e]));
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe.each(Object.keys(VALUES) as Variant[])("chart rendered with %s values", (variant) => {
  it("passes helm lint --strict", async () => {
    await expect(lint({ values: [VALUES[variant]] })).resolves.toContain("0 chart(s) failed");
  });

  it("validates every object against the Kubernetes (and prometheus-operator) schemas", async () => {
    const objects = rendered[variant];
    expect(objects.length).toBeGreaterThan(8);
    for (const object of objects) await validateObject(object);
  });

  it("runs every pod under Pod Security restricted", () => {
    const specs = podSpecs(rendered[variant]);
    expect(specs.length).toBeGreaterThanOrEqual(2);
    for (const { owner, spec } of specs) expect(restrictedViolations(spec), owner).toEqual([]);
  });

  it("renders no Secret but the generated NATS credentials, and puts every credential in env through secretKeyRef", () => {
    const objects = rendered[variant];
    // Only where nats.auth generates them (default and kind values: bundled NATS, no existingSecret).
    const expected = variant === "default" || variant === "kind" ? ["af-agentfactory-nats-auth"] : [];
    expect(objects.filter((o) => o.kind === "Secret").map((o) => o.metadata.name)).toEqual(expected);
    const sensitive = /SECRET$|TOKEN$|PRIVATE_KEY$|API_KEY$|WEBHOOK_URL$|GITHUB_APP_ID$|PASSWORD$/;
    for (const { owner, spec } of podSpecs(objects))
      for (const c of spec.containers)
        for (const e of c.env ?? [])
          if (sensitive.test(e.name)) expect(e.valueFrom?.secretKeyRef, `${owner} ${e.name}`).toBeDefined();
  });

  it("namespaces and labels every object, and Services select existing pods and ports", () => {
    const objects = rendered[variant];
    for (const o of objects) {
      if (o.kind !== "CustomResourceDefinition" && o.kind !== "Namespace")
        expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBeTruthy();
      if (o.kind !== "CustomResourceDefinition")
        expect(o.metadata.labels?.["app.kubernetes.io/part-of"], `${o.kind}/${o.metadata.name}`).toBe("agentfactory");
    }
    const workloads = objects.filter((o) => ["Deployment", "StatefulSet"].includes(o.kind));
    for (const svc of objects.filter((o) => o.kind === "Service")) {
      const target = workloads.find((w) => matches(svc.spec.selector, w.spec.template.metadata.labels));
      expect(target, `Service ${svc.metadata.name} selects no workload`).toBeDefined();
      const portNames = target!.spec.template.spec.containers.flatMap((c: { ports?: { name: string }[] }) =>
        (c.ports ?? []).map((p) => p.name),
      );
      for (const port of svc.spec.ports) expect(portNames).toContain(port.targetPort);
    }
    for (const w of workloads) expect(matches(w.spec.selector.matchLabels, w.spec.template.metadata.labels)).toBe(true);
  });
});

describe("operator", () => {
  it("gets its configuration as env vars and the GitHub App key as a mounted file", () => {
    const op = find(rendered.default, "Deployment", "-operator");
    const env = envOf(container(op, "operator"));
    expect(env.get("NAMESPACE").value).toBe("agentfactory");
    expect(env.get("NATS_URL").value).toBe("nats://af-agentfactory-nats.agentfactory.svc:4222");
    expect(env.get("RUNNER_IMAGE").value).toBe("ghcr.io/agentfactory/runner:0.1.0");
    expect(env.get("RUNNER_SERVICE_ACCOUNT").value).toBe("af-agentfactory-runner");
    expect(env.get("LEADER_ELECTION").value).toBe("true");
    expect(env.get("DEFAULT_MODEL").value).toBe("claude-sonnet-4-5");
    expect(env.get("DEFAULT_BUDGET_USD").value).toBe("5");
    expect(env.get("MAX_REMEDIATION_ROUNDS").value).toBe("2");
    expect(env.get("METRICS_PORT").value).toBe("8080");
    expect(env.get("MODEL_SECRET_NAME").value).toBe("agentfactory-model");
    expect(env.get("GITHUB_API_URL").value).toBe("https://api.github.com");
    expect(env.get("GITHUB_APP_ID").valueFrom.secretKeyRef).toEqual({ name: "agentfactory-github-app", key: "app-id" });
    expect(env.has("SLACK_WEBHOOK_URL")).toBe(false);
    expect(env.has("RUNTIME_CLASS_NAME")).toBe(false);
    expect(env.get("DEFAULT_PROVIDER").value).toBe("anthropic");
    expect(env.get("LEASE_NAME").value).toBe("af-agentfactory-operator");
    expect(env.get("MODEL_SECRET_KEY").value).toBe("anthropic-api-key");
    expect(env.get("CLICKUP_API_TOKEN").valueFrom.secretKeyRef).toEqual({
      name: "agentfactory-webhooks",
      key: "clickup-api-token",
      optional: true,
    });
    const keyFile = env.get("GITHUB_APP_PRIVATE_KEY_FILE").value as string;
    const mount = container(op, "operator").volumeMounts.find((m: { name: string }) => m.name === "github-app");
    expect(keyFile).toBe(`${mount.mountPath}/private-key.pem`);
    const volume = op.spec.template.spec.volumes.find((v: { name: string }) => v.name === "github-app");
    expect(volume.secret.secretName).toBe("agentfactory-github-app");
    expect(op.spec.template.spec.automountServiceAccountToken).toBe(true);
    // Heap limits from the operator bench (under 300 MiB at 1,000 runs).
    expect(env.get("NODE_OPTIONS").value).toBe("--max-semi-space-size=2 --max-old-space-size=192");
  });

  it("sets no NODE_OPTIONS when operator.nodeOptions is empty", async () => {
    const objects = await render({ values: [VALUES.default], set: { "operator.nodeOptions": "" } });
    const env = envOf(container(find(objects, "Deployment", "-operator"), "operator"));
    expect(env.has("NODE_OPTIONS")).toBe(false);
    expect(env.has("LOG_LEVEL")).toBe(true);
  });

  it("passes the chart's imagePullSecrets to the operator for the runner Jobs", async () => {
    const objects = await render({
      values: [VALUES.default],
      set: { "imagePullSecrets[0].name": "regcred", "imagePullSecrets[1].name": "mirror" },
    });
    const op = find(objects, "Deployment", "-operator");
    expect(op.spec.template.spec.imagePullSecrets).toEqual([{ name: "regcred" }, { name: "mirror" }]);
    const env = envOf(container(op, "operator"));
    expect(env.get("RUNNER_IMAGE_PULL_SECRETS").value).toBe("regcred,mirror");
    expect(env.get("RUNNER_TERMINATION_GRACE_SECONDS").value).toBe("15");
    expect(ConfigSchema.parse({ RUNNER_IMAGE_PULL_SECRETS: "regcred,mirror" }).RUNNER_IMAGE_PULL_SECRETS).toEqual([
      "regcred",
      "mirror",
    ]);
    expect(
      envOf(container(find(rendered.default, "Deployment", "-operator"), "operator")).has("RUNNER_IMAGE_PULL_SECRETS"),
    ).toBe(false);
  });

  it("follows the values: runs namespace, HA replicas, digests, runtime class, Slack", () => {
    const op = find(rendered.full, "Deployment", "-operator");
    const env = envOf(container(op, "operator"));
    expect(op.spec.replicas).toBe(2);
    expect(container(op, "operator").image).toMatch(/^registry\.example\.com\/agentfactory\/agentfactory@sha256:/);
    expect(env.get("NAMESPACE").value).toBe("agentfactory-runs");
    expect(env.get("RUNTIME_CLASS_NAME").value).toBe("gvisor");
    expect(env.get("RUNNER_CPU_LIMIT").value).toBe("2");
    expect(env.get("RUNNER_MEMORY_REQUEST").value).toBe("1Gi");
    expect(env.get("SLACK_CHANNEL").value).toBe("#factory");
    expect(env.get("GITHUB_INSTALLATION_ID").value).toBe("42");
    expect(env.get("RUNNER_IMAGE").value).toBe("registry.example.com/agentfactory/runner:1.2.3");
    expect(env.get("GITHUB_SERVER_URL").value).toBe("https://ghe.example.com");
    expect(env.get("ANTHROPIC_BASE_URL").value).toBe("https://llm-proxy.example.com");
    expect(env.get("DEFAULT_BUDGET_USD").value).toBe("12.5");
    expect(env.get("SLACK_WEBHOOK_URL").valueFrom.secretKeyRef).toEqual({ name: "slack", key: "webhook-url" });
    expect(env.get("GITHUB_APP_PRIVATE_KEY_FILE").value).toBe("/etc/agentfactory/github-app/key.pem");
    expect(env.get("EXTRA").value).toBe("1");
  });

  it("creates a separate runs namespace labeled Pod Security restricted and kept on uninstall", () => {
    const ns = rendered.full.filter((o) => o.kind === "Namespace");
    expect(ns.map((o) => o.metadata.name)).toEqual(["agentfactory-runs"]);
    expect(ns[0]!.metadata.labels?.["pod-security.kubernetes.io/enforce"]).toBe("restricted");
    expect(ns[0]!.metadata.annotations?.["helm.sh/resource-policy"]).toBe("keep");
    // The release namespace is Helm's (--create-namespace): never rendered.
    expect(rendered.default.filter((o) => o.kind === "Namespace")).toEqual([]);
  });

  it("uses an external NATS when the bundled one is off", () => {
    const env = envOf(container(find(rendered.minimal, "Deployment", "-operator"), "operator"));
    expect(env.get("NATS_URL").value).toBe("nats://nats.nats.svc:4222");
    expect(rendered.minimal.filter((o) => o.metadata.name.includes("nats"))).toEqual([]);
  });
});

describe("env contract", () => {
  // Set by the chart but not (yet) read: the runner ServiceAccount for Jobs (IRSA / workload identity).
  const PROPOSED = new Set(["RUNNER_SERVICE_ACCOUNT"]);
  // Read by node itself, not by the config.
  const RUNTIME = new Set(["NODE_OPTIONS"]);
  const fromValues = new Set(["EXTRA"]); // operator.extraEnv in full-values.yaml

  it.each([
    ["operator", Object.keys(ConfigSchema.shape)],
    ["gateway", Object.keys(GatewayEnv.shape)],
  ])("every env var the chart sets on the %s is one its config reads", (component, known) => {
    for (const variant of ["default", "full"] as const) {
      const names = [...envOf(container(find(rendered[variant], "Deployment", `-${component}`), component)).keys()];
      const unknown = names.filter(
        (n) => !known.includes(n) && !PROPOSED.has(n) && !RUNTIME.has(n) && !fromValues.has(n),
      );
      expect(unknown, `${component} (${variant} values)`).toEqual([]);
    }
  });
});

describe("gateway", () => {
  it("takes webhook secrets from the referenced Secret, optional ones optional, and holds no token nor App key", () => {
    const gw = find(rendered.default, "Deployment", "-gateway");
    const env = envOf(container(gw, "gateway"));
    expect(env.get("GITHUB_WEBHOOK_SECRET").valueFrom.secretKeyRef).toEqual({
      name: "agentfactory-webhooks",
      key: "github-webhook-secret",
    });
    for (const name of ["CLICKUP_WEBHOOK_SECRET", "CLICKUP_API_TOKEN", "DISPATCH_TOKEN"])
      expect(env.get(name).valueFrom.secretKeyRef.optional, name).toBe(true);
    // The internet-facing gateway holds no GitHub App credential (the operator checks senders).
    for (const variant of ["default", "full"] as const) {
      const names = [...envOf(container(find(rendered[variant], "Deployment", "-gateway"), "gateway")).keys()];
      expect(names.filter((n) => n.startsWith("GITHUB_APP") || n === "GITHUB_API_URL")).toEqual([]);
      const mounts = find(rendered[variant], "Deployment", "-gateway").spec.template.spec.volumes ?? [];
      expect(JSON.stringify(mounts)).not.toContain("github-app");
    }
    expect(env.get("TRIGGER_LABEL").value).toBe("ai-agent");
    expect(env.get("PORT").value).toBe("8080");
    expect(gw.spec.template.spec.automountServiceAccountToken).toBe(false);
    expect(gw.spec.replicas).toBe(2);
    expect(env.has("CLICKUP_REPO_MAP")).toBe(false);
    const full = envOf(container(find(rendered.full, "Deployment", "-gateway"), "gateway"));
    expect(JSON.parse(full.get("CLICKUP_REPO_MAP").value)).toEqual({ "901": "acme/web" });
    expect(env.has("CLICKUP_REPO_ALLOWLIST")).toBe(false);
    expect(JSON.parse(full.get("CLICKUP_REPO_ALLOWLIST").value)).toEqual({ "901": ["acme/web-docs"] });
  });

  it("exposes only the webhook routes through the Ingress", () => {
    const ingress = find(rendered.full, "Ingress");
    const paths = ingress.spec.rules[0].http.paths.map((p: { path: string }) => p.path);
    expect(paths).toEqual(["/webhooks", "/dispatch"]);
    expect(ingress.spec.tls[0].secretName).toBe("factory-tls");
    expect(rendered.default.some((o) => o.kind === "Ingress")).toBe(false);
  });
});

describe("RBAC and service accounts", () => {
  it("grants the operator only what it needs, namespaced, with no wildcards", () => {
    const objects = rendered.full;
    expect(objects.filter((o) => o.kind.startsWith("Cluster") && o.kind !== "ClusterIP")).toEqual([]);
    const role = find(objects, "Role", "-operator");
    expect(role.metadata.namespace).toBe("agentfactory-runs");
    const grants = Object.fromEntries(
      role.rules.flatMap((r: { apiGroups: string[]; resources: string[]; verbs: string[] }) =>
        r.resources.map((res) => [`${r.apiGroups.join(",")}/${res}`, [...r.verbs].sort()]),
      ),
    );
    expect(grants).toEqual({
      "agentfactory.dev/agentruns": ["create", "delete", "get", "list", "patch", "update", "watch"],
      "agentfactory.dev/agentruns/status": ["get", "patch", "update"],
      "agentfactory.dev/agentruns/finalizers": ["update"],
      "batch/jobs": ["create", "delete", "get", "list", "patch", "watch"],
      "/pods": ["get", "list", "watch"],
      "/pods/log": ["get"],
      "/secrets": ["create", "delete", "get", "patch", "update"],
      ",events.k8s.io/events": ["create", "patch"],
      // The Job controller's FailedCreate Events (operator/observe.ts).
      "/events": ["list", "watch"],
    });
    // The operator keeps its Lease in NAMESPACE, the runs namespace.
    const election = find(objects, "Role", "-leader-election");
    expect(election.metadata.namespace).toBe("agentfactory-runs");
    expect(election.rules[0]).toMatchObject({ apiGroups: ["coordination.k8s.io"], resources: ["leases"] });
    for (const binding of objects.filter((o) => o.kind === "RoleBinding")) {
      expect(binding.subjects).toEqual([
        { kind: "ServiceAccount", name: "af-agentfactory-operator", namespace: "agentfactory" },
      ]);
      expect(find(objects, "Role", binding.roleRef.name).metadata.namespace).toBe(binding.metadata.namespace);
    }
  });

  it("mounts a token only for the operator; runner pods get a token-less account in the runs namespace", () => {
    const accounts = Object.fromEntries(
      rendered.full
        .filter((o) => o.kind === "ServiceAccount")
        .map((o) => [o.metadata.name, [o.metadata.namespace, o.automountServiceAccountToken]]),
    );
    expect(accounts).toEqual({
      "af-agentfactory-operator": ["agentfactory", true],
      "af-agentfactory-gateway": ["agentfactory", false],
      "af-agentfactory-nats": ["agentfactory", false],
      "af-agentfactory-runner": ["agentfactory-runs", false],
    });
  });
});

describe("NetworkPolicies", () => {
  // biome-ignore lint/suspicious/noExplicitAny: policy rules as rendered YAML
  const ports = (rules: any[]) => rules.flatMap((r) => r.ports.map((p: any) => `${p.protocol}/${p.port}`)).sort();

  it("lets runner pods reach only DNS and HTTPS, and nothing reach them", () => {
    const policy = find(rendered.default, "NetworkPolicy", "-runner");
    expect(policy.spec.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(policy.spec.ingress).toEqual([]);
    expect(ports(policy.spec.egress)).toEqual(["TCP/443", "TCP/53", "UDP/53"]);
    expect(policy.spec.podSelector.matchExpressions).toEqual([{ key: "agentfactory.dev/run", operator: "Exists" }]);
    const full = find(rendered.full, "NetworkPolicy", "-runner");
    expect(full.metadata.namespace).toBe("agentfactory-runs");
    expect(full.spec.egress[1].to).toEqual([{ ipBlock: { cidr: "0.0.0.0/0", except: ["10.0.0.0/8"] } }]);
    expect(ports(full.spec.egress)).toContain("TCP/8443");
  });

  it("limits the operator to DNS, the API server, NATS and HTTPS, and the gateway's ingress to its port", () => {
    const operator = find(rendered.default, "NetworkPolicy", "-operator");
    expect(ports(operator.spec.egress)).toEqual(["TCP/4222", "TCP/443", "TCP/53", "TCP/6443", "UDP/53"]);
    const nats = operator.spec.egress.find((r: { ports: { port: number }[] }) => r.ports[0]?.port === 4222);
    expect(nats.to[0].podSelector.matchLabels["app.kubernetes.io/component"]).toBe("nats");
    const gateway = find(rendered.full, "NetworkPolicy", "-gateway");
    expect(ports(gateway.spec.ingress)).toEqual(["TCP/8080", "TCP/8080"]);
    expect(gateway.spec.ingress[0].from[0].namespaceSelector.matchLabels).toEqual({
      "kubernetes.io/metadata.name": "ingress-nginx",
    });
    const natsPolicy = find(rendered.default, "NetworkPolicy", "-nats");
    expect(natsPolicy.spec.egress).toEqual([]);
    const clients = natsPolicy.spec.ingress[0].from.map(
      (f: { podSelector: { matchLabels: Record<string, string> } }) =>
        f.podSelector.matchLabels["app.kubernetes.io/component"],
    );
    expect(clients).toEqual(["operator", "gateway"]);
    expect(rendered.minimal.some((o) => o.kind === "NetworkPolicy")).toBe(false);
  });
});

describe("availability", () => {
  it("has a PodDisruptionBudget per Deployment, selecting its pods", () => {
    for (const name of ["-operator", "-gateway"]) {
      const pdb = find(rendered.default, "PodDisruptionBudget", name);
      const deployment = find(rendered.default, "Deployment", name);
      expect(pdb.spec.maxUnavailable).toBe(1);
      expect(matches(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels)).toBe(true);
    }
    expect(rendered.minimal.some((o) => o.kind === "PodDisruptionBudget")).toBe(false);
  });

  it("runs NATS with JetStream on a PVC, with a config nats-server accepts", async () => {
    const sts = find(rendered.default, "StatefulSet", "-nats");
    expect(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe("10Gi");
    const config = find(rendered.default, "ConfigMap", "-nats").data["nats.conf"] as string;
    expect(config).toMatch(/jetstream \{\n\s+store_dir: \/data\/jetstream/);
    const dir = await mkdtemp(join(tmpdir(), "af-nats-"));
    try {
      const file = join(dir, "nats.conf");
      await writeFile(file, config.replace("/data/jetstream", join(dir, "js")));
      const { stdout, stderr } = await promisify(execFile)("nats-server", ["-c", file, "-t"], {
        env: {
          ...process.env,
          POD_NAME: "nats-0",
          ...Object.fromEntries(NATS_CLIENTS.map((c) => [natsPasswordEnv(c), `p${c}0123456789`])),
        },
      }).catch((error) => {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new Error("nats-server missing: run make deps");
        throw error;
      });
      expect(`${stdout}${stderr}`).toContain("is valid");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("monitoring", () => {
  it("renders ServiceMonitors with the configured labels, matching the metrics Services and ports", () => {
    const monitors = rendered.full.filter((o) => o.kind === "ServiceMonitor");
    expect(monitors).toHaveLength(2);
    for (const monitor of monitors) {
      expect(monitor.metadata.labels?.release).toBe("kube-prometheus-stack");
      const service = rendered.full.find(
        (o) => o.kind === "Service" && matches(monitor.spec.selector.matchLabels, o.metadata.labels),
      );
      expect(service, monitor.metadata.name).toBeDefined();
      expect(service!.spec.ports.map((p: { name: string }) => p.name)).toContain(monitor.spec.endpoints[0].port);
    }
    expect(rendered.default.some((o) => o.kind === "ServiceMonitor" || o.kind === "PrometheusRule")).toBe(false);
  });

  it("ships the three dashboards as labelled ConfigMaps with fixed uids and a datasource variable", async () => {
    const maps = rendered.full.filter((o) => o.kind === "ConfigMap" && o.metadata.name.includes("-dashboard-"));
    expect(maps.map((m) => m.metadata.name).sort()).toEqual([
      "af-agentfactory-dashboard-operator",
      "af-agentfactory-dashboard-overview",
      "af-agentfactory-dashboard-stages",
    ]);
    const uids = new Set<string>();
    for (const map of maps) {
      expect(map.metadata.labels?.grafana_dashboard).toBe("1");
      expect(map.metadata.namespace).toBe("monitoring");
      const [file, json] = Object.entries(map.data as Record<string, string>)[0]!;
      expect(json).toBe((await readFile(join(CHART_DIR, "files/dashboards", file), "utf8")).trimEnd());
      const dashboard = JSON.parse(json);
      uids.add(dashboard.uid);
      expect(dashboard.templating.list[0]).toMatchObject({
        name: "datasource",
        type: "datasource",
        query: "prometheus",
      });
      for (const panel of dashboard.panels.filter((p: { type: string }) => p.type !== "row")) {
        expect(panel.datasource.uid, panel.title).toBe(DATASOURCE_VARIABLE);
        expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      }
    }
    expect([...uids].sort()).toEqual(["agentfactory-operator", "agentfactory-overview", "agentfactory-stages"]);
  });
});

describe("AgentRun CRD", () => {
  it("the chart's copy is byte-for-byte crds/agentrun.yaml", async () => {
    const [copy, source] = await Promise.all([
      readFile(join(CHART_DIR, "files/crd/agentrun.yaml")),
      readFile(join(REPO_ROOT, "crds/agentrun.yaml")),
    ]);
    expect(copy.equals(source), "charts/agentfactory/files/crd/agentrun.yaml drifted: copy crds/agentrun.yaml").toBe(
      true,
    );
  });

  it("is rendered from templates/crd, kept on uninstall, and left out when crd.enabled=false", async () => {
    const crd = find(rendered.default, "CustomResourceDefinition");
    expect(crd).toEqual(parse(await readFile(join(REPO_ROOT, "crds/agentrun.yaml"), "utf8")));
    expect(crd.metadata.annotations?.["helm.sh/resource-policy"]).toBe("keep");
    expect(rendered.minimal.some((o) => o.kind === "CustomResourceDefinition")).toBe(false);
  });
});

describe("values", () => {
  it("refuses to render without the required Secret references", async () => {
    await expect(templateText()).rejects.toThrow(/secrets\.githubApp\.existingSecret is required/);
    await expect(
      templateText({ set: { "secrets.githubApp.existingSecret": "gh", "secrets.webhooks.existingSecret": "w" } }),
    ).rejects.toThrow(/secrets\.model\.existingSecret is required/);
  });

  it("rejects mistyped and unknown values through values.schema.json", async () => {
    await expect(lint({ values: [VALUES.default], set: { "operator.metricsPort": "eighty" } })).rejects.toThrow(
      /metricsPort/,
    );
    await expect(lint({ values: [VALUES.default], set: { "operatr.replicas": "2" } })).rejects.toThrow(
      /additional properties 'operatr' not allowed/,
    );
  });
});

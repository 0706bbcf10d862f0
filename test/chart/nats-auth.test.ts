/**
 * The chart's NATS authentication and TLS (issue 14 item 10), rendered by the real helm: the users and
 * permissions are core/nats-auth.ts's, every client gets its own credentials from one Secret (given or
 * generated), TLS renders and nats-server accepts it, and cloud identity annotations land only on the
 * ServiceAccount they are set for.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import {
  NATS_CLIENTS,
  type NatsClient,
  natsAuthorizationConf,
  natsPasswordEnv,
  natsPasswordKey,
  natsUser,
} from "../../core/nats-auth.ts";
import { CHART_DIR, find, type K8sObject, lint, podSpecs, render, templateText } from "./helm.ts";

const run = promisify(execFile);
const DEFAULT = "charts/agentfactory/ci/default-values.yaml";
const FULL = "charts/agentfactory/ci/full-values.yaml";
const MINIMAL = "charts/agentfactory/ci/minimal-values.yaml";
/** Every NATS client's workload is rendered, the egress gateway's included. */
const EGRESS = "charts/agentfactory/ci/egress-values.yaml";

// biome-ignore lint/suspicious/noExplicitAny: rendered YAML
type Any = any;
const natsConf = (objects: K8sObject[]) => find(objects, "ConfigMap", "-nats").data["nats.conf"] as string;
const envOf = (container: Any): Map<string, Any> => new Map((container.env ?? []).map((e: Any) => [e.name, e]));

/** The pod spec of each NATS client, by client. */
function clientPods(objects: K8sObject[]): Record<NatsClient, Any> {
  const specs = podSpecs(objects);
  const of = (suffix: string) => {
    const found = specs.find((s) => s.owner.endsWith(suffix));
    if (!found) throw new Error(`no workload *${suffix}`);
    return found.spec;
  };
  return { gateway: of("-gateway"), operator: of("-operator"), patterns: of("-patterns"), egress: of("-egress") };
}
const mainContainer = (spec: Any) => spec.containers[0];

let byDefault: K8sObject[];
let full: K8sObject[];
beforeAll(async () => {
  [byDefault, full] = await Promise.all([
    render({
      values: [DEFAULT, EGRESS],
      setTyped: { "patterns.enabled": "true" },
      set: { "patterns.rulesRepo": "acme/rules" },
    }),
    render({ values: [FULL, EGRESS] }),
  ]);
});

describe("NATS users and permissions", () => {
  it("the chart's authorization.conf is core/nats-auth.ts's, byte for byte", async () => {
    const copy = await readFile(join(CHART_DIR, "files/nats/authorization.conf"), "utf8");
    expect(copy, "charts/agentfactory/files/nats/authorization.conf drifted: run make chart-files").toBe(
      natsAuthorizationConf(),
    );
  });

  it("puts that block into the server config and reads each password from the credentials Secret", () => {
    const conf = natsConf(byDefault);
    expect(conf).toContain(natsAuthorizationConf().trimEnd());
    expect(conf).not.toMatch(/tls \{/);
    const nats = mainContainer(find(byDefault, "StatefulSet", "-nats").spec.template.spec);
    const env = envOf(nats);
    for (const client of NATS_CLIENTS)
      expect(env.get(natsPasswordEnv(client))?.valueFrom.secretKeyRef, client).toEqual({
        name: "af-agentfactory-nats-auth",
        key: natsPasswordKey(client),
      });
  });

  it("generates one password per client: letters and digits starting with a letter, fresh per install", async () => {
    const secret = find(byDefault, "Secret", "-nats-auth");
    expect(Object.keys(secret.data).sort()).toEqual(NATS_CLIENTS.map(natsPasswordKey).sort());
    const passwords = Object.values(secret.data as Record<string, string>).map((v) =>
      Buffer.from(v, "base64").toString(),
    );
    for (const p of passwords) expect(p).toMatch(/^p[A-Za-z0-9]{47}$/);
    expect(new Set(passwords).size).toBe(NATS_CLIENTS.length);
    const again = find(await render({ values: [DEFAULT] }), "Secret", "-nats-auth");
    expect(again.data[natsPasswordKey("gateway")]).not.toBe(secret.data[natsPasswordKey("gateway")]);
  });

  it("gives each client its own user and only its own password", () => {
    for (const [objects, secret] of [
      [byDefault, "af-agentfactory-nats-auth"],
      [full, "nats-credentials"],
    ] as const) {
      const pods = clientPods(objects);
      for (const client of NATS_CLIENTS) {
        const env = envOf(mainContainer(pods[client]));
        expect(env.get("NATS_USER")?.value, client).toBe(natsUser(client));
        expect(env.get("NATS_PASSWORD")?.valueFrom.secretKeyRef, client).toEqual({
          name: secret,
          key: natsPasswordKey(client),
        });
        // No other client's password, in env or as a mounted Secret.
        const refs = JSON.stringify(pods[client]);
        for (const other of NATS_CLIENTS.filter((c) => c !== client))
          expect(refs, `${client} holds ${other}'s password`).not.toContain(natsPasswordKey(other));
      }
    }
  });

  it("uses a given Secret and renders none", () => {
    expect(full.filter((o) => o.kind === "Secret")).toEqual([]);
    const nats = envOf(mainContainer(find(full, "StatefulSet", "-nats").spec.template.spec));
    expect(nats.get(natsPasswordEnv("operator"))?.valueFrom.secretKeyRef.name).toBe("nats-credentials");
  });

  it("with nats.auth.enabled=false: no users, no credentials, no Secret", async () => {
    const objects = await render({ values: [DEFAULT], setTyped: { "nats.auth.enabled": "false" } });
    expect(natsConf(objects)).not.toContain("authorization");
    expect(objects.filter((o) => o.kind === "Secret")).toEqual([]);
    const env = envOf(mainContainer(find(objects, "Deployment", "-gateway").spec.template.spec));
    expect(env.has("NATS_USER") || env.has("NATS_PASSWORD")).toBe(false);
    const minimal = await render({ values: [MINIMAL] });
    expect(envOf(mainContainer(find(minimal, "Deployment", "-operator").spec.template.spec)).has("NATS_PASSWORD")).toBe(
      false,
    );
  });

  it("an external NATS with auth needs the Secret: refused without one, used with one", async () => {
    const setTyped = { "nats.auth.enabled": "true" };
    await expect(templateText({ values: [MINIMAL], setTyped })).rejects.toThrow(
      /nats\.auth\.existingSecret is required with an external NATS/,
    );
    const objects = await render({ values: [MINIMAL], setTyped, set: { "nats.auth.existingSecret": "ext-nats" } });
    expect(objects.filter((o) => o.kind === "Secret")).toEqual([]);
    const env = envOf(mainContainer(find(objects, "Deployment", "-gateway").spec.template.spec));
    expect(env.get("NATS_PASSWORD").valueFrom.secretKeyRef).toEqual({ name: "ext-nats", key: "gateway-password" });
  });
});

describe("NATS TLS", () => {
  it("serves the client port with the given certificate and mounts the CA into every client", () => {
    expect(natsConf(full)).toMatch(
      /tls \{\n\s+cert_file: \/etc\/nats-tls\/tls\.crt\n\s+key_file: \/etc\/nats-tls\/tls\.key/,
    );
    const sts = find(full, "StatefulSet", "-nats").spec.template.spec;
    expect(sts.volumes.find((v: Any) => v.name === "tls").secret.secretName).toBe("nats-server-tls");
    expect(mainContainer(sts).volumeMounts).toContainEqual({ name: "tls", mountPath: "/etc/nats-tls", readOnly: true });
    const pods = clientPods(full);
    for (const client of NATS_CLIENTS) {
      const spec = pods[client];
      expect(envOf(mainContainer(spec)).get("NATS_TLS_CA_FILE")?.value, client).toBe(
        "/etc/agentfactory/nats-ca/ca.crt",
      );
      expect(spec.volumes.find((v: Any) => v.name === "nats-ca").secret, client).toEqual({
        secretName: "nats-server-tls",
        items: [{ key: "ca.crt", path: "ca.crt" }],
      });
      expect(mainContainer(spec).volumeMounts, client).toContainEqual({
        name: "nats-ca",
        mountPath: "/etc/agentfactory/nats-ca",
        readOnly: true,
      });
    }
    for (const client of NATS_CLIENTS)
      expect(envOf(mainContainer(clientPods(byDefault)[client])).has("NATS_TLS_CA_FILE"), client).toBe(false);
  });

  it("takes the CA from its own Secret when given, and needs one for an external NATS", async () => {
    const own = await render({
      values: [FULL],
      set: { "nats.tls.caSecretName": "corp-ca", "nats.tls.caKey": "root.pem" },
    });
    const gw = find(own, "Deployment", "-gateway").spec.template.spec;
    expect(gw.volumes.find((v: Any) => v.name === "nats-ca").secret.secretName).toBe("corp-ca");
    expect(envOf(mainContainer(gw)).get("NATS_TLS_CA_FILE").value).toBe("/etc/agentfactory/nats-ca/root.pem");
    await expect(templateText({ values: [DEFAULT], setTyped: { "nats.tls.enabled": "true" } })).rejects.toThrow(
      /nats\.tls\.secretName is required/,
    );
    await expect(templateText({ values: [MINIMAL], setTyped: { "nats.tls.enabled": "true" } })).rejects.toThrow(
      /nats\.tls\.caSecretName is required/,
    );
  });

  it("passes lint with TLS on, and nats-server accepts the rendered TLS config with a real certificate", async () => {
    await expect(lint({ values: [FULL] })).resolves.toContain("0 chart(s) failed");
    const dir = await mkdtemp(join(tmpdir(), "af-nats-tls-"));
    try {
      await run("openssl", [
        "req",
        ...["-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=nats"],
        ...["-keyout", join(dir, "tls.key"), "-out", join(dir, "tls.crt")],
      ]);
      const conf = natsConf(full).replace("/data/jetstream", join(dir, "js")).replaceAll("/etc/nats-tls/", `${dir}/`);
      await writeFile(join(dir, "nats.conf"), conf);
      const env = Object.fromEntries(NATS_CLIENTS.map((c) => [natsPasswordEnv(c), `p${c}0123456789`]));
      const { stdout, stderr } = await run("nats-server", ["-c", join(dir, "nats.conf"), "-t"], {
        env: { ...process.env, POD_NAME: "nats-0", ...env },
      });
      expect(`${stdout}${stderr}`).toContain("is valid");
      // The same config without the key file is refused: the check reads the files.
      await rm(join(dir, "tls.key"));
      await expect(
        run("nats-server", ["-c", join(dir, "nats.conf"), "-t"], { env: { ...process.env, POD_NAME: "n", ...env } }),
      ).rejects.toThrow(/tls\.key|no such file/i);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("ServiceAccount annotations", () => {
  const annotationsBySa = (objects: K8sObject[]) =>
    Object.fromEntries(
      objects.filter((o) => o.kind === "ServiceAccount").map((o) => [o.metadata.name, o.metadata.annotations ?? {}]),
    );
  const IRSA = "eks.amazonaws.com/role-arn";

  it("by default puts none on any ServiceAccount, the runner's included", () => {
    expect(annotationsBySa(byDefault)).toEqual({
      "af-agentfactory-operator": {},
      "af-agentfactory-gateway": {},
      "af-agentfactory-nats": {},
      "af-agentfactory-runner": {},
      "af-agentfactory-egress": {},
    });
  });

  it("puts a component's annotations on that component's ServiceAccount only", async () => {
    expect(annotationsBySa(full)).toEqual({
      "af-agentfactory-operator": { [IRSA]: "arn:aws:iam::123456789012:role/agentfactory-operator" },
      "af-agentfactory-gateway": {},
      "af-agentfactory-nats": {},
      "af-agentfactory-runner": {},
      "af-agentfactory-egress": {},
    });
    const objects = await render({
      values: [DEFAULT],
      set: {
        "runner.serviceAccount.annotations.iam\\.gke\\.io/gcp-service-account": "runner@p.iam.gserviceaccount.com",
        "gateway.serviceAccount.annotations.team": "edge",
      },
    });
    expect(annotationsBySa(objects)).toEqual({
      "af-agentfactory-operator": {},
      "af-agentfactory-gateway": { team: "edge" },
      "af-agentfactory-nats": {},
      "af-agentfactory-runner": { "iam.gke.io/gcp-service-account": "runner@p.iam.gserviceaccount.com" },
    });
  });

  it("refuses the removed shared serviceAccount.annotations with a message naming the new keys", async () => {
    await expect(
      templateText({
        values: [DEFAULT],
        set: { [`serviceAccount.annotations.${IRSA.replaceAll(".", "\\.")}`]: "arn:x" },
      }),
    ).rejects.toThrow(/serviceAccount\.annotations was removed.*operator\.serviceAccount\.annotations/s);
  });
});

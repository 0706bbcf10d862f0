/**
 * The control plane's PKI, made with the openssl CLI (ECDSA P-256, valid 2 days): one CA that signs the API
 * server's serving certificate and every client certificate (admin in system:masters, kube-controller-manager,
 * kube-scheduler, the kubelet's node identity, the API server's client for the kubelet), the kubelet's serving
 * certificate, and the ServiceAccount token signing key pair. What kubeadm lays out, in one temporary directory.
 *
 * @example
 *   const pki = await makePki(join(dir, "pki"), { nodeName: "world-node" });
 *   // pki.ca, pki.apiserver.cert, pki.client("admin").cert, pki.serviceAccountKey …
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface CertFiles {
  /** PEM file paths. */
  cert: string;
  key: string;
}

export interface Pki {
  dir: string;
  /** The CA certificate (PEM file) that signed everything. */
  ca: string;
  caPem: string;
  apiserver: CertFiles;
  /** Client certificates by role. */
  admin: CertFiles;
  controllerManager: CertFiles;
  scheduler: CertFiles;
  /** CN=system:node:<nodeName>, O=system:nodes (Node authorizer, NodeRestriction). */
  node: CertFiles;
  /** The kubelet's serving certificate (pod logs), IP SAN 127.0.0.1. */
  kubeletServing: CertFiles;
  /** The API server's client certificate towards the kubelet. */
  apiserverKubeletClient: CertFiles;
  /** ServiceAccount token signing key (private) and its public key. */
  serviceAccountKey: string;
  serviceAccountPub: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run("openssl", args, { cwd });
  } catch (e) {
    const err = e as { stderr?: string; message: string; code?: string };
    if (err.code === "ENOENT") throw new Error("openssl not found: run make deps");
    throw new Error(`openssl ${args[0]} failed: ${err.stderr ?? err.message}`);
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A key and a certificate signed by the CA in `dir`, with the given subject and extensions. */
async function signed(
  dir: string,
  name: string,
  subject: string,
  ext: { eku: "serverAuth" | "clientAuth"; san?: string },
): Promise<CertFiles> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  await openssl(["req", "-new", ...EC, "-subj", subject, "-keyout", key, "-out", csr], dir);
  await writeFile(
    extFile,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      `extendedKeyUsage=${ext.eku}`,
      ...(ext.san ? [`subjectAltName=${ext.san}`] : []),
    ].join("\n"),
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-sha256",
      "-extfile",
      extFile,
      "-out",
      cert,
    ],
    dir,
  );
  return { cert, key };
}

export async function makePki(dir: string, opts: { nodeName: string }): Promise<Pki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await openssl(
    [
      "req",
      "-x509",
      ...EC,
      "-days",
      "2",
      "-subj",
      "/CN=agentfactory-test-world-ca",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,digitalSignature,keyCertSign,cRLSign",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
    ],
    dir,
  );
  const sans = [
    "IP:127.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
  ].join(",");
  // Sequential: openssl's -CAcreateserial writes ca.srl, which parallel signers would race on.
  const apiserver = await signed(dir, "apiserver", "/CN=kube-apiserver", { eku: "serverAuth", san: sans });
  const admin = await signed(dir, "admin", "/O=system:masters/CN=world-admin", { eku: "clientAuth" });
  const controllerManager = await signed(dir, "controller-manager", "/CN=system:kube-controller-manager", {
    eku: "clientAuth",
  });
  const scheduler = await signed(dir, "scheduler", "/CN=system:kube-scheduler", { eku: "clientAuth" });
  const node = await signed(dir, "node", `/O=system:nodes/CN=system:node:${opts.nodeName}`, { eku: "clientAuth" });
  const kubeletServing = await signed(dir, "kubelet-serving", `/CN=${opts.nodeName}`, {
    eku: "serverAuth",
    san: "IP:127.0.0.1,DNS:localhost",
  });
  const apiserverKubeletClient = await signed(dir, "apiserver-kubelet-client", "/CN=kube-apiserver-kubelet-client", {
    eku: "clientAuth",
  });
  await openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key"], dir);
  await openssl(["ec", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);
  return {
    dir,
    ca: join(dir, "ca.crt"),
    caPem: await readFile(join(dir, "ca.crt"), "utf8"),
    apiserver,
    admin,
    controllerManager,
    scheduler,
    node,
    kubeletServing,
    apiserverKubeletClient,
    serviceAccountKey: join(dir, "sa.key"),
    serviceAccountPub: join(dir, "sa.pub"),
  };
}

/** A kubeconfig file for one client certificate. */
export async function writeKubeconfig(
  path: string,
  opts: { server: string; ca: string; client: CertFiles; user: string },
): Promise<string> {
  const [ca, cert, key] = await Promise.all([readFile(opts.ca), readFile(opts.client.cert), readFile(opts.client.key)]);
  const b64 = (b: Buffer) => b.toString("base64");
  await writeFile(
    path,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: world",
      "  cluster:",
      `    server: ${opts.server}`,
      `    certificate-authority-data: ${b64(ca)}`,
      "users:",
      `- name: ${opts.user}`,
      "  user:",
      `    client-certificate-data: ${b64(cert)}`,
      `    client-key-data: ${b64(key)}`,
      "contexts:",
      "- name: world",
      "  context:",
      "    cluster: world",
      `    user: ${opts.user}`,
      "current-context: world",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return path;
}

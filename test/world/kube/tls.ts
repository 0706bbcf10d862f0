/**
 * A self-signed certificate for 127.0.0.1: kubectl (client-go) never sends a bearer token over plain HTTP,
 * so the simulator serves HTTPS and puts the certificate in the kubeconfig as certificate-authority-data.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

export interface ServingCert {
  cert: string;
  key: string;
}

let cached: Promise<ServingCert> | undefined;

async function generate(): Promise<ServingCert> {
  const dir = await mkdtemp(join(tmpdir(), "kube-sim-tls-"));
  try {
    await promisify(execFile)("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=kube-sim",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,digitalSignature,keyCertSign",
      "-addext",
      "extendedKeyUsage=serverAuth",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ]);
    return { cert: await readFile(join(dir, "cert.pem"), "utf8"), key: await readFile(join(dir, "key.pem"), "utf8") };
  } catch (e) {
    throw new Error(
      `kube-sim: generating a TLS certificate with openssl failed (install openssl: make deps): ${(e as Error).message}`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** One certificate per process; every simulator instance serves it. */
export function servingCert(): Promise<ServingCert> {
  cached ??= generate();
  cached.catch(() => {
    cached = undefined;
  });
  return cached;
}

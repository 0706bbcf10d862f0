import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { isSecretName } from "./config.ts";

const SEALED = "AGENTFACTORY_SEALED_ENV";

/**
 * Keeps the runner's secrets out of its process environment block, which any process of the same
 * user could read at /proc/<pid>/environ. On first start the secrets go to a private file and the
 * process re-executes itself (same PID, new environment block without them); the new image reads the
 * file, deletes it and keeps the values in memory only. Returns the full environment to configure from.
 */
export function unsealEnvironment(): Record<string, string | undefined> {
  const sealedPath = process.env[SEALED];
  if (sealedPath) {
    const secrets = JSON.parse(fs.readFileSync(sealedPath, "utf8")) as Record<string, string>;
    fs.rmSync(path.dirname(sealedPath), { recursive: true, force: true });
    delete process.env[SEALED];
    return { ...process.env, ...secrets };
  }
  const secrets = Object.fromEntries(
    Object.entries(process.env).filter(([k, v]) => v !== undefined && isSecretName(k)),
  ) as Record<string, string>;
  if (!Object.keys(secrets).length || typeof process.execve !== "function" || process.env.AGENTFACTORY_NO_SEAL === "1")
    return { ...process.env };
  const dir = fs.mkdtempSync(path.join(writableDir(process.env.HOME), "af-seal-"));
  const file = path.join(dir, "env.json");
  fs.writeFileSync(file, JSON.stringify(secrets), { mode: 0o600 });
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k, v]) => v !== undefined && !isSecretName(k)),
  ) as Record<string, string>;
  process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    ...env,
    [SEALED]: file,
  });
  throw new Error("unreachable: execve returned");
}

function writableDir(home: string | undefined): string {
  try {
    if (home) {
      fs.accessSync(home, fs.constants.W_OK);
      return home;
    }
  } catch {
    // read-only or missing HOME: fall back to the temp dir
  }
  return os.tmpdir();
}

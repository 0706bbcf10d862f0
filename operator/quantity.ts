/**
 * Kubernetes resource quantities (resource.Quantity): `<signed number><suffix>`, the suffix a binary SI
 * (Ki Mi Gi Ti Pi Ei), decimal SI (n u m "" k M G T P E) or decimal exponent (e3, E-2). The API server
 * refuses anything else with a 422, which a reconcile loop would repeat forever, so every quantity the
 * operator is configured with is checked once at start (`quantityProblems`).
 *
 * @kubernetes/client-node has a `quantityToScalar`, but its package root does not export it and it accepts
 * what the API server refuses (`Number("")`, `0x10`) and refuses what it accepts (`1.5Gi`).
 */
import type { Config } from "./config.ts";
import { SANDBOX_DEFAULTS, VOLUME_SIZE_LIMITS } from "./job.ts";

const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;
const FACTORS: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** The value of a quantity (as a float: enough to compare), or undefined when it is not one. `parseQuantity("500m") === 0.5`. */
export function parseQuantity(q: string): number | undefined {
  const m = QUANTITY.exec(q);
  if (!m) return undefined;
  const suffix = m[2] ?? "";
  const factor = FACTORS[suffix] ?? 10 ** Number(suffix.slice(1));
  return Number(m[1]) * factor;
}

/**
 * Every problem with the quantities of the configuration, each naming its setting; [] when all are valid.
 * Checks syntax, sign, and that no request exceeds its limit (both refused by the API server).
 */
export function quantityProblems(c: Config): string[] {
  const problems: string[] = [];
  const d = SANDBOX_DEFAULTS.resources;
  const check = (setting: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const n = parseQuantity(value);
    if (n === undefined)
      problems.push(`${setting}=${JSON.stringify(value)} is not a Kubernetes quantity (e.g. 500m, 2, 1Gi)`);
    else if (n < 0) problems.push(`${setting}=${JSON.stringify(value)} is negative`);
    return n !== undefined && n >= 0 ? n : undefined;
  };
  const pair = (request: [string, string | undefined], limit: [string, string | undefined]) => {
    const r = check(...request);
    const l = check(...limit);
    if (r !== undefined && l !== undefined && r > l)
      problems.push(`${request[0]}=${request[1]} is more than ${limit[0]}=${limit[1]}`);
  };
  pair(["RUNNER_CPU_REQUEST", c.RUNNER_CPU_REQUEST], ["RUNNER_CPU_LIMIT", c.RUNNER_CPU_LIMIT]);
  pair(["RUNNER_MEMORY_REQUEST", c.RUNNER_MEMORY_REQUEST], ["RUNNER_MEMORY_LIMIT", c.RUNNER_MEMORY_LIMIT]);
  pair(
    ["RUNNER_EPHEMERAL_STORAGE_REQUEST", c.RUNNER_EPHEMERAL_STORAGE_REQUEST],
    ["RUNNER_EPHEMERAL_STORAGE_LIMIT", c.RUNNER_EPHEMERAL_STORAGE_LIMIT],
  );
  pair(
    ["SANDBOX_CPU_REQUEST", c.SANDBOX_CPU_REQUEST ?? d.cpuRequest],
    ["SANDBOX_CPU_LIMIT", c.SANDBOX_CPU_LIMIT ?? d.cpuLimit],
  );
  pair(
    ["SANDBOX_MEMORY_REQUEST", c.SANDBOX_MEMORY_REQUEST ?? d.memoryRequest],
    ["SANDBOX_MEMORY_LIMIT", c.SANDBOX_MEMORY_LIMIT ?? d.memoryLimit],
  );
  pair(
    ["SANDBOX_EPHEMERAL_STORAGE_REQUEST", c.SANDBOX_EPHEMERAL_STORAGE_REQUEST ?? d.ephemeralStorageRequest],
    ["SANDBOX_EPHEMERAL_STORAGE_LIMIT", c.SANDBOX_EPHEMERAL_STORAGE_LIMIT ?? d.ephemeralStorageLimit],
  );
  if (c.RUNNER_VOLUME_SIZE_LIMITS) {
    let limits: unknown;
    try {
      limits = JSON.parse(c.RUNNER_VOLUME_SIZE_LIMITS);
    } catch {
      problems.push("RUNNER_VOLUME_SIZE_LIMITS is not JSON");
    }
    if (limits !== undefined && (typeof limits !== "object" || limits === null || Array.isArray(limits)))
      problems.push('RUNNER_VOLUME_SIZE_LIMITS is not a JSON object ({"workspace":"8Gi",...})');
    else if (limits)
      for (const [name, value] of Object.entries(limits)) {
        if (!(name in VOLUME_SIZE_LIMITS)) problems.push(`RUNNER_VOLUME_SIZE_LIMITS: unknown volume ${name}`);
        else if (value !== null && value !== "") check(`RUNNER_VOLUME_SIZE_LIMITS.${name}`, String(value));
      }
  }
  return problems;
}

/**
 * The `podman run` command line for a pod's container. Environment values are not on the command line
 * (`-e NAME` takes the value from podman's own environment) so secrets never show up in `ps` or logs;
 * only variables podman itself reads (HOME, PATH, ...) go inline, so the container's values cannot
 * change how podman runs.
 */
import { PODMAN_GLOBAL_ARGS, PODMAN_RUN_ARGS } from "../podman.ts";
import { type Container, parseQuantity } from "./pod-env.ts";

/** The pod-level securityContext fields a container run honours. */
export interface PodSecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  fsGroup?: number;
  supplementalGroups?: number[];
}

export interface PodmanRunInput {
  /** The podman container's name (unique per pod and container). */
  podName: string;
  container: Container;
  /** The pod's securityContext: runAsUser/runAsGroup fall back to it; fsGroup and supplementalGroups are added. */
  podSecurityContext?: PodSecurityContext;
  /** The node's PID limit per container (`--pids-limit`). */
  pidsLimit?: number;
  image: string;
  /** Host directory → container path, for emptyDir, secret and configMap volumes. */
  mounts: { hostPath: string; mountPath: string; readOnly?: boolean }[];
  /** Host file bind-mounted at the container's terminationMessagePath. */
  terminationLogHostPath: string;
  /** The container's resolved environment. */
  env: Record<string, string>;
}

/** Variables podman reads itself: passed inline as NAME=value (they are never secrets). */
const INLINE_ENV = new Set([
  "HOME",
  "PATH",
  "TMPDIR",
  "USER",
  "LANG",
  "SHELL",
  "XDG_RUNTIME_DIR",
  "XDG_CONFIG_HOME",
  "XDG_DATA_HOME",
]);

/** The environment of the podman process: the current one plus the container variables passed by name. */
export function podmanProcessEnv(env: Record<string, string>): Record<string, string | undefined> {
  const byName = Object.fromEntries(Object.entries(env).filter(([k]) => !INLINE_ENV.has(k)));
  return { ...process.env, ...byName };
}

export function podmanRunArgs(input: PodmanRunInput): string[] {
  const c = input.container;
  const sc = c.securityContext ?? {};
  const user = sc.runAsUser ?? input.podSecurityContext?.runAsUser;
  const group = sc.runAsGroup ?? input.podSecurityContext?.runAsGroup;
  const args = [...PODMAN_GLOBAL_ARGS, "run", "--rm", "--network", "host", ...PODMAN_RUN_ARGS, "--name", input.podName];
  if (sc.readOnlyRootFilesystem) args.push("--read-only");
  if (user !== undefined) args.push("--user", group !== undefined ? `${user}:${group}` : String(user));
  const pod = input.podSecurityContext ?? {};
  for (const g of [...(pod.fsGroup !== undefined ? [pod.fsGroup] : []), ...(pod.supplementalGroups ?? [])])
    args.push("--group-add", String(g));
  if (input.pidsLimit !== undefined) args.push("--pids-limit", String(input.pidsLimit));
  args.push("--cap-drop", "ALL", "--security-opt", "no-new-privileges");
  const limits = c.resources?.limits ?? {};
  if (limits.memory !== undefined) args.push("--memory", String(Math.floor(parseQuantity(limits.memory))));
  if (limits.cpu !== undefined) args.push("--cpus", String(parseQuantity(limits.cpu)));
  for (const m of input.mounts) args.push("-v", `${m.hostPath}:${m.mountPath}${m.readOnly ? ":ro" : ""}`);
  args.push("-v", `${input.terminationLogHostPath}:${c.terminationMessagePath ?? "/dev/termination-log"}`);
  for (const [name, value] of Object.entries(input.env))
    args.push("-e", INLINE_ENV.has(name) ? `${name}=${value}` : name);
  if (c.workingDir) args.push("-w", c.workingDir);
  // `command` replaces the image's ENTRYPOINT (JSON form keeps every element), `args` its CMD.
  if (c.command?.length) args.push("--entrypoint", JSON.stringify(c.command));
  args.push(input.image, ...(c.args ?? []));
  return args;
}

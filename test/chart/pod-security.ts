/**
 * The Pod Security Standards' "restricted" profile (Kubernetes 1.33, which includes "baseline"),
 * checked on a pod spec the way the PodSecurity admission controller does, so the chart fails its
 * tests before a namespace labelled `pod-security.kubernetes.io/enforce: restricted` rejects it.
 */

const RESTRICTED_VOLUMES = [
  "configMap",
  "csi",
  "downwardAPI",
  "emptyDir",
  "ephemeral",
  "persistentVolumeClaim",
  "projected",
  "secret",
];
const SAFE_SYSCTLS = new Set([
  "kernel.shm_rmid_forced",
  "net.ipv4.ip_local_port_range",
  "net.ipv4.ip_unprivileged_port_start",
  "net.ipv4.tcp_syncookies",
  "net.ipv4.ping_group_range",
  "net.ipv4.ip_local_reserved_ports",
  "net.ipv4.tcp_keepalive_time",
  "net.ipv4.tcp_fin_timeout",
  "net.ipv4.tcp_keepalive_intvl",
  "net.ipv4.tcp_keepalive_probes",
]);
const SELINUX_TYPES = new Set(["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"]);
const SECCOMP_OK = new Set(["RuntimeDefault", "Localhost"]);

// biome-ignore lint/suspicious/noExplicitAny: a pod spec as rendered YAML
type Any = any;

/** Every violation of the restricted profile, as readable strings; empty when the pod is admitted. */
export function restrictedViolations(spec: Any, annotations: Record<string, string> = {}): string[] {
  const out: string[] = [];
  const pod = spec.securityContext ?? {};
  const containers: Any[] = [
    ...(spec.initContainers ?? []),
    ...(spec.containers ?? []),
    ...(spec.ephemeralContainers ?? []),
  ];

  // baseline
  for (const field of ["hostNetwork", "hostPID", "hostIPC"]) if (spec[field]) out.push(`${field} is true`);
  if (pod.windowsOptions?.hostProcess) out.push("pod windowsOptions.hostProcess");
  for (const v of spec.volumes ?? []) {
    if (v.hostPath) out.push(`volume ${v.name} is hostPath`);
    const type = Object.keys(v).find((k) => k !== "name");
    if (!type || !RESTRICTED_VOLUMES.includes(type)) out.push(`volume ${v.name} has type ${type}, not allowed`);
  }
  for (const s of pod.sysctls ?? []) if (!SAFE_SYSCTLS.has(s.name)) out.push(`unsafe sysctl ${s.name}`);
  for (const [key, value] of Object.entries(annotations))
    if (key.startsWith("container.apparmor.security.beta.kubernetes.io/") && value === "unconfined")
      out.push(`AppArmor unconfined (${key})`);
  checkSeLinux(pod.seLinuxOptions, "pod", out);
  if (pod.appArmorProfile?.type === "Unconfined") out.push("pod AppArmor Unconfined");

  // restricted: pod level
  const podNonRoot = pod.runAsNonRoot === true;
  const podSeccomp = SECCOMP_OK.has(pod.seccompProfile?.type);
  if (pod.runAsUser === 0) out.push("pod runAsUser is 0");
  if (pod.seccompProfile?.type === "Unconfined") out.push("pod seccomp Unconfined");

  for (const c of containers) {
    const sc = c.securityContext ?? {};
    const where = `container ${c.name}`;
    if (sc.privileged) out.push(`${where} is privileged`);
    if (sc.windowsOptions?.hostProcess) out.push(`${where} windowsOptions.hostProcess`);
    for (const p of c.ports ?? []) if (p.hostPort) out.push(`${where} uses hostPort ${p.hostPort}`);
    if (sc.procMount && sc.procMount !== "Default") out.push(`${where} procMount ${sc.procMount}`);
    if (sc.appArmorProfile?.type === "Unconfined") out.push(`${where} AppArmor Unconfined`);
    checkSeLinux(sc.seLinuxOptions, where, out);

    if (sc.allowPrivilegeEscalation !== false) out.push(`${where}: allowPrivilegeEscalation must be false`);
    if (sc.runAsNonRoot === false || (!podNonRoot && sc.runAsNonRoot !== true))
      out.push(`${where}: runAsNonRoot must be true (pod or container)`);
    if (sc.runAsUser === 0) out.push(`${where}: runAsUser is 0`);
    const type = sc.seccompProfile?.type;
    if (type === "Unconfined" || (!podSeccomp && !SECCOMP_OK.has(type)))
      out.push(`${where}: seccompProfile must be RuntimeDefault or Localhost (pod or container)`);
    const caps = sc.capabilities ?? {};
    if (!(caps.drop ?? []).includes("ALL")) out.push(`${where}: capabilities must drop ALL`);
    for (const add of caps.add ?? []) if (add !== "NET_BIND_SERVICE") out.push(`${where}: adds capability ${add}`);
  }
  return out;
}

function checkSeLinux(options: Any, where: string, out: string[]): void {
  if (!options) return;
  if (!SELINUX_TYPES.has(options.type ?? "")) out.push(`${where}: seLinux type ${options.type}`);
  if (options.user || options.role) out.push(`${where}: seLinux user/role set`);
}

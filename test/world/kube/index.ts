export { ApiError } from "./errors.ts";
export {
  assertPodmanReady,
  defaultProcessCommand,
  type Kubelet,
  type KubeletMode,
  type KubeletOptions,
  NODE_NAME,
  type PodRun,
  startKubelet,
} from "./kubelet.ts";
export { type PodmanRunInput, podmanRunArgs } from "./podman-args.ts";
export type { ResourceType } from "./resources.ts";
export {
  DEFAULT_CRD_FILES,
  DEFAULT_NAMESPACE,
  type KubeSim,
  type KubeSimOptions,
  PodLogs,
  REPO_ROOT,
  type RequestLogEntry,
  startKubeSim,
} from "./server.ts";
export type { DeleteOptions, Obj, StoreEvent } from "./store.ts";

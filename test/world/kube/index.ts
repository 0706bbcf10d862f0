export { ApiError } from "./errors.ts";
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

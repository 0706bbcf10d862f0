/** Container logs, written by the kubelet simulator and served at pods/<name>/log. */
import { EventEmitter } from "node:events";
import type { ServerResponse } from "node:http";
import { send } from "./http.ts";

export class PodLogs extends EventEmitter {
  private readonly logs = new Map<string, string>();
  constructor() {
    super();
    this.setMaxListeners(0); // one listener pair per `kubectl logs -f`
  }
  append(ns: string, pod: string, chunk: string): void {
    const key = `${ns}/${pod}`;
    this.logs.set(key, (this.logs.get(key) ?? "") + chunk);
    this.emit(key, chunk);
  }
  get(ns: string, pod: string): string | undefined {
    return this.logs.get(`${ns}/${pod}`);
  }
  /** Marks the end of a pod's log stream (followers stop). */
  end(ns: string, pod: string): void {
    this.emit(`${ns}/${pod}:end`);
  }
}

/**
 * GET pods/<name>/log: the log so far (tailLines honoured), or with follow=true a stream that ends when the
 * container does. `finished` says whether the pod has already terminated.
 */
export function serveLog(
  res: ServerResponse,
  podLogs: PodLogs,
  ns: string,
  name: string,
  finished: boolean,
  q: URLSearchParams,
) {
  const text = podLogs.get(ns, name) ?? "";
  if (q.get("follow") !== "true") return send(res, 200, tail(text, q), "text/plain");
  res.writeHead(200, { "Content-Type": "text/plain", "Transfer-Encoding": "chunked" });
  res.write(text);
  if (finished) return res.end();
  const key = `${ns}/${name}`;
  const onChunk = (c: string) => res.write(c);
  const onEnd = () => res.end();
  podLogs.on(key, onChunk);
  podLogs.once(`${key}:end`, onEnd);
  res.on("close", () => {
    podLogs.off(key, onChunk);
    podLogs.off(`${key}:end`, onEnd);
  });
}

function tail(text: string, q: URLSearchParams): string {
  const n = q.get("tailLines");
  if (!n) return text;
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines
    .slice(-Number(n))
    .map((l) => `${l}\n`)
    .join("");
}

/**
 * A Kubernetes API server simulator speaking the real REST wire protocol on loopback: discovery (legacy and
 * aggregated), CRUD, patch (merge, strategic, JSON, apply), status subresource, list/watch with
 * resourceVersion (410 when too old, bookmarks), CRD schema validation, server-side Table printing,
 * ownerReference GC and bearer-token auth. Enough for @kubernetes/client-node 2.x and kubectl 1.33.
 *
 * @example
 *   const sim = await startKubeSim();
 *   const kc = new KubeConfig(); kc.loadFromString(sim.kubeconfig);
 *   execFileSync(KUBECTL, ["--kubeconfig", sim.kubeconfigPath, "get", "agentruns"]);
 *   await sim.stop();
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ApiError, badRequest, invalid } from "./errors.ts";
import { coreToEventsV1, eventsV1ToCore } from "./events.ts";
import { includeObject, parseBody, readBody, send, wantPartial, wantTable } from "./http.ts";
import { openApiGroupVersion, openApiRoot } from "./openapi.ts";
import { applyPatch, mergePatch } from "./patch.ts";
import { PodLogs, serveLog } from "./pod-logs.ts";
import { apiVersionOf, builtinTypes, discoveryResponse, loadCrdTypes, type ResourceType } from "./resources.ts";
import { matchesFields, matchesLabels, parseSelector } from "./selectors.ts";
import { type DeleteOptions, type Filter, meta, type Obj, Store, type StoreEvent } from "./store.ts";
import { renderTable } from "./table.ts";
import { servingCert } from "./tls.ts";

export { PodLogs } from "./pod-logs.ts";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const DEFAULT_CRD_FILES = [join(REPO_ROOT, "crds/agentrun.yaml")];
export const DEFAULT_NAMESPACE = "agentfactory";

export interface KubeSimOptions {
  /** CRD YAML files to serve (default: the repo's crds/agentrun.yaml). */
  crdFiles?: string[];
  /** Namespaces to create besides default, kube-system and agentfactory. */
  namespaces?: string[];
  /** Interval of BOOKMARK events on watches that allow them (default 10 s). */
  bookmarkIntervalMs?: number;
  /** How many watch events are kept per resource for resuming watches (default 1000); older ones get 410. */
  historyLimit?: number;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  query: string;
  verb: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  code: number;
  contentType?: string;
  userAgent?: string;
}

export interface KubeSim {
  /** `https://127.0.0.1:<port>` (self-signed: kubectl sends tokens only over TLS; the CA is in the kubeconfig). */
  url: string;
  /** PEM of the serving certificate (its own CA), for clients other than KubeConfig. */
  caCert: string;
  token: string;
  /** Path of a kubeconfig file (context namespace: agentfactory). */
  kubeconfigPath: string;
  /** The same kubeconfig as YAML text, for KubeConfig.loadFromString. */
  kubeconfig: string;
  namespace: string;
  store: Store;
  podLogs: PodLogs;
  /** Resolves a plural, singular, kind or short name (optionally `plural.group`) to its resource type. */
  resource(name: string): ResourceType;
  list(resource: string, namespace?: string, selectors?: { labelSelector?: string; fieldSelector?: string }): Obj[];
  get(resource: string, namespace: string | undefined, name: string): Obj | undefined;
  /** Creates an object; namespace from metadata.namespace, else agentfactory. */
  create(resource: string, obj: Obj): Obj;
  /** Replaces an object (or only its status with subresource "status"). */
  update(resource: string, obj: Obj, opts?: { subresource?: "status" }): Obj;
  /** Merge-patches an object's status through the status subresource. */
  patchStatus(resource: string, namespace: string | undefined, name: string, status: Obj): Obj;
  delete(resource: string, namespace: string | undefined, name: string, opts?: DeleteOptions): Obj;
  /** Every API request served, in order. */
  requestLog: RequestLogEntry[];
  /** Number of requests with this verb (create, update, patch, get, list, watch, delete) on a resource. */
  count(verb: string, resource: string, opts?: { subresource?: string }): number;
  /** Drops the watch history, like an etcd compaction: resuming any older watch gets 410 Gone. */
  compact(): void;
  /** Ends every open watch stream; clients reconnect from their last resourceVersion. */
  closeWatches(): void;
  stop(): Promise<void>;
}

interface Route {
  rt: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export async function startKubeSim(opts: KubeSimOptions = {}): Promise<KubeSim> {
  const types = [...builtinTypes(), ...loadCrdTypes(opts.crdFiles ?? DEFAULT_CRD_FILES)];
  const store = new Store(types, opts.historyLimit ?? 1000);
  const podLogs = new PodLogs();
  const token = randomBytes(24).toString("hex");
  const bookmarkMs = opts.bookmarkIntervalMs ?? 10_000;
  const requestLog: RequestLogEntry[] = [];
  const watches = new Set<ServerResponse>();

  const nsType = types.find((t) => t.plural === "namespaces")!;
  for (const ns of new Set(["default", "kube-system", "kube-public", DEFAULT_NAMESPACE, ...(opts.namespaces ?? [])])) {
    store.create(nsType, undefined, { metadata: { name: ns } });
  }

  function resource(name: string): ResourceType {
    const [first, ...rest] = name.split(".");
    const group = rest.join(".");
    const lower = (first ?? "").toLowerCase();
    const rt = types.find(
      (t) =>
        (!group || t.group === group) &&
        (t.plural === lower || t.singular === lower || t.kind.toLowerCase() === lower || t.shortNames.includes(lower)),
    );
    if (!rt) throw new Error(`unknown resource ${name}`);
    return rt;
  }

  // events.k8s.io/v1 is a view over the stored core/v1 events.
  const isEventsV1 = (rt: ResourceType) => rt.group === "events.k8s.io";
  const view = (rt: ResourceType, o: Obj): Obj => (isEventsV1(rt) ? coreToEventsV1(o) : o);
  const coreEvents = types.find((t) => t.group === "" && t.plural === "events")!;
  const storageType = (rt: ResourceType) => (isEventsV1(rt) ? coreEvents : rt);
  const toStorage = (rt: ResourceType, o: Obj): Obj => (isEventsV1(rt) ? eventsV1ToCore(o) : o);

  function matches(o: Obj, f: Filter): boolean {
    if (f.namespace && meta(o).namespace !== f.namespace) return false;
    if (f.labelSelector?.length && !matchesLabels(f.labelSelector, o)) return false;
    if (f.fieldSelector?.length && !matchesFields(f.fieldSelector, o)) return false;
    return true;
  }

  function listView(rt: ResourceType, f: Filter): Obj[] {
    return store
      .list(storageType(rt), { namespace: f.namespace })
      .map((o) => view(rt, o))
      .filter((o) => matches(o, f));
  }

  function parseRoute(segments: string[], group: string, version: string): Route | undefined {
    let namespace: string | undefined;
    let rest = segments;
    if (
      rest[0] === "namespaces" &&
      rest.length >= 3 &&
      !(rest.length === 3 && ["status", "finalize"].includes(rest[2]!))
    ) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, subresource] = rest;
    const rt = types.find((t) => t.group === group && t.version === version && t.plural === plural);
    if (!rt) return undefined;
    if (namespace && !rt.namespaced) return undefined;
    return { rt, namespace, name, subresource };
  }

  function respondObject(
    req: IncomingMessage,
    res: ServerResponse,
    code: number,
    rt: ResourceType,
    o: Obj,
    q: URLSearchParams,
  ) {
    // fieldValidation=Warn (the default): dropped unknown fields come back as warnings.
    if (store.warnings.length && (req.method === "POST" || req.method === "PUT" || req.method === "PATCH")) {
      res.setHeader(
        "Warning",
        store.warnings.map((w) => `299 - ${JSON.stringify(w)}`),
      );
      store.warnings = [];
    }
    if (wantTable(req)) {
      const table = renderTable(rt, [o], { resourceVersion: meta(o).resourceVersion }, includeObject(q));
      return send(res, code, table, "application/json;as=Table;v=v1;g=meta.k8s.io");
    }
    if (wantPartial(req)) {
      return send(res, code, { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata });
    }
    send(res, code, view(rt, o));
  }

  function handleList(req: IncomingMessage, res: ServerResponse, route: Route, q: URLSearchParams) {
    const { rt } = route;
    const f = {
      namespace: route.namespace,
      labelSelector: parseSelector(q.get("labelSelector")),
      fieldSelector: parseSelector(q.get("fieldSelector")),
    };
    const all = listView(rt, f);
    const rv = String(store.rv);
    let start = 0;
    const cont = q.get("continue");
    if (cont) {
      try {
        start = JSON.parse(Buffer.from(cont, "base64url").toString()).start;
      } catch {
        throw badRequest("invalid continue token");
      }
    }
    const limit = Number(q.get("limit") ?? 0);
    const items = limit > 0 ? all.slice(start, start + limit) : all.slice(start);
    const listMeta: Obj = { resourceVersion: rv };
    if (limit > 0 && start + limit < all.length) {
      listMeta.continue = Buffer.from(JSON.stringify({ start: start + limit, rv })).toString("base64url");
      listMeta.remainingItemCount = all.length - start - limit;
    }
    if (wantTable(req)) {
      return send(
        res,
        200,
        renderTable(rt, items, listMeta, includeObject(q)),
        "application/json;as=Table;v=v1;g=meta.k8s.io",
      );
    }
    if (wantPartial(req)) {
      return send(res, 200, {
        kind: "PartialObjectMetadataList",
        apiVersion: "meta.k8s.io/v1",
        metadata: listMeta,
        items: items.map((o) => ({
          kind: "PartialObjectMetadata",
          apiVersion: "meta.k8s.io/v1",
          metadata: o.metadata,
        })),
      });
    }
    send(res, 200, { kind: rt.listKind, apiVersion: apiVersionOf(rt), metadata: listMeta, items });
  }

  function handleWatch(req: IncomingMessage, res: ServerResponse, route: Route, q: URLSearchParams) {
    const { rt } = route;
    const f: Filter = {
      namespace: route.namespace,
      labelSelector: parseSelector(q.get("labelSelector")),
      fieldSelector: parseSelector(q.get("fieldSelector")),
    };
    if (route.name)
      f.fieldSelector = [...(f.fieldSelector ?? []), { key: "metadata.name", op: "=", values: [route.name] }];
    res.writeHead(200, {
      "Content-Type": "application/json",
      "Transfer-Encoding": "chunked",
      "Cache-Control": "no-cache",
    });
    res.flushHeaders();
    // `kubectl get -w` asks for Tables: every event then carries a one-row Table.
    const asTable = wantTable(req);
    const write = (type: string, object: unknown) => {
      if (res.writableEnded || res.destroyed) return;
      const o =
        asTable && type !== "ERROR" && type !== "BOOKMARK"
          ? renderTable(rt, [object as Obj], {}, includeObject(q))
          : object;
      res.write(`${JSON.stringify({ type, object: o })}\n`);
    };
    const rvParam = q.get("resourceVersion");
    const storage = storageType(rt);
    let fromRv: number;
    if (!rvParam || rvParam === "0") {
      for (const o of listView(rt, f)) write("ADDED", o);
      fromRv = store.rv;
      if (q.get("sendInitialEvents") === "true") {
        write("BOOKMARK", {
          kind: rt.kind,
          apiVersion: apiVersionOf(rt),
          metadata: { resourceVersion: String(fromRv), annotations: { "k8s.io/initial-events-end": "true" } },
        });
      }
    } else fromRv = Number(rvParam);
    const deliver = (e: StoreEvent) => {
      if (e.storageKey !== storage.storageKey) return;
      const now = view(rt, e.object);
      const before = e.prev ? view(rt, e.prev) : undefined;
      const newMatch = matches(now, f);
      const oldMatch = before ? matches(before, f) : false;
      if (e.type === "ADDED" && newMatch) write("ADDED", now);
      else if (e.type === "MODIFIED") {
        if (newMatch && oldMatch) write("MODIFIED", now);
        else if (newMatch) write("ADDED", now);
        else if (oldMatch) write("DELETED", now);
      } else if (e.type === "DELETED" && (oldMatch || newMatch)) write("DELETED", now);
    };
    let backlog: StoreEvent[];
    try {
      backlog = Number.isNaN(fromRv) ? [] : store.eventsSince(storage.storageKey, fromRv);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      write("ERROR", e.toStatus());
      res.end();
      return;
    }
    for (const e of backlog) deliver(e);
    const unsubscribe = store.subscribe(deliver);
    watches.add(res);
    const timers: NodeJS.Timeout[] = [];
    if (q.get("allowWatchBookmarks") === "true") {
      timers.push(
        setInterval(
          () =>
            write("BOOKMARK", {
              kind: rt.kind,
              apiVersion: apiVersionOf(rt),
              metadata: { resourceVersion: String(store.rv) },
            }),
          bookmarkMs,
        ),
      );
    }
    const timeout = Number(q.get("timeoutSeconds") ?? 0);
    if (timeout > 0) timers.push(setTimeout(() => res.end(), timeout * 1000));
    const cleanup = () => {
      unsubscribe();
      for (const t of timers) clearTimeout(t);
      watches.delete(res);
    };
    res.on("close", cleanup);
    res.on("finish", cleanup);
  }

  async function handleResource(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    q: URLSearchParams,
    entry: RequestLogEntry,
  ) {
    const { rt, namespace: ns, name, subresource } = route;
    const storage = storageType(rt);
    const method = req.method ?? "GET";
    const watch = q.get("watch") === "true" || q.get("watch") === "1";
    if (subresource && !rt.subresources.includes(subresource)) {
      throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    }
    if (method === "GET") {
      if (watch) {
        entry.verb = "watch";
        return handleWatch(req, res, route, q);
      }
      if (subresource === "log") {
        entry.verb = "get";
        const pod = store.get(route.rt, ns, name!);
        const phase = (pod.status as Obj | undefined)?.phase;
        // Each container's log is kept under <pod>/<container>; the pod's own key holds the regular containers'.
        const container = q.get("container");
        // A log appended for the pod alone (no container named) serves its regular containers.
        const regular = ((pod.spec as Obj | undefined)?.containers as { name?: string }[] | undefined) ?? [];
        const own = container !== null && podLogs.get(ns ?? "", `${name}/${container}`) !== undefined;
        const key = own || (container && !regular.some((c) => c.name === container)) ? `${name}/${container}` : name!;
        container && podLogs.get(ns ?? "", `${name}/${container}`) !== undefined ? `${name}/${container}` : name!;
        return serveLog(res, podLogs, ns ?? "", key, phase === "Succeeded" || phase === "Failed", q);
      }
      if (!name) {
        entry.verb = "list";
        return handleList(req, res, route, q);
      }
      entry.verb = "get";
      return respondObject(req, res, 200, rt, store.get(storage, ns, name), q);
    }
    // Failing loudly beats persisting what the client meant as a trial.
    if (q.get("dryRun")) throw badRequest("dryRun is not supported by the Kubernetes API simulator");
    const contentType = req.headers["content-type"] ?? "application/json";
    const strict = q.get("fieldValidation") === "Strict";
    const body = parseBody(await readBody(req), contentType) as Obj | undefined;
    if (method === "POST" && !name) {
      entry.verb = "create";
      if (!body) throw badRequest("request body is required");
      return respondObject(req, res, 201, rt, store.create(storage, ns, toStorage(rt, body), { strict }), q);
    }
    if (method === "PUT" && name) {
      entry.verb = "update";
      if (!body) throw badRequest("request body is required");
      const o = store.update(storage, ns, name, toStorage(rt, body), {
        subresource,
        requireResourceVersion: true,
        strict,
      });
      return respondObject(req, res, 200, rt, o, q);
    }
    if (method === "PATCH" && name) {
      entry.verb = "patch";
      if (body === undefined) throw badRequest("request body is required");
      const isApply = contentType.startsWith("application/apply-patch+yaml");
      if (isApply && !q.get("fieldManager")) {
        throw invalid(rt, name, [
          {
            reason: "FieldValueRequired",
            field: "fieldManager",
            message: "Required value: is required for apply patch",
          },
        ]);
      }
      const current = store.tryGet(storage, ns, name);
      if (!current) {
        if (isApply && !subresource) {
          const created = store.create(
            storage,
            ns,
            toStorage(rt, { ...body, metadata: { ...(body.metadata as Obj), name } }),
          );
          return respondObject(req, res, 201, rt, created, q);
        }
        store.get(storage, ns, name);
      }
      const patched = applyPatch(view(rt, current!), contentType, body, rt.crd);
      const o = store.update(storage, ns, name, toStorage(rt, patched), { subresource, strict });
      return respondObject(req, res, 200, rt, o, q);
    }
    if (method === "DELETE") {
      const options = { ...((body ?? {}) as DeleteOptions) };
      const pp = q.get("propagationPolicy");
      if (pp) options.propagationPolicy = pp as DeleteOptions["propagationPolicy"];
      if (!name) {
        entry.verb = "deletecollection";
        const f = {
          namespace: ns,
          labelSelector: parseSelector(q.get("labelSelector")),
          fieldSelector: parseSelector(q.get("fieldSelector")),
        };
        const deleted = listView(rt, f).map((o) => view(rt, store.delete(storage, ns, meta(o).name!, options)));
        return send(res, 200, {
          kind: rt.listKind,
          apiVersion: apiVersionOf(rt),
          metadata: { resourceVersion: String(store.rv) },
          items: deleted,
        });
      }
      entry.verb = "delete";
      if (rt.group === "batch" && rt.plural === "jobs" && !options.propagationPolicy) {
        res.setHeader(
          "Warning",
          '299 - "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning"',
        );
      }
      return respondObject(req, res, 200, rt, store.delete(storage, ns, name, options), q);
    }
    throw new ApiError(405, "MethodNotAllowed", `the server does not allow this method on the requested resource`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, entry: RequestLogEntry): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    if (["/healthz", "/livez", "/readyz"].includes(path)) return send(res, 200, "ok", "text/plain");
    if (path === "/version") {
      return send(res, 200, {
        major: "1",
        minor: "33",
        gitVersion: "v1.33.0-agentfactory-sim",
        gitCommit: "0000000000000000000000000000000000000000",
        gitTreeState: "clean",
        buildDate: "2026-01-01T00:00:00Z",
        goVersion: "go1.24.0",
        compiler: "gc",
        platform: "linux/amd64",
      });
    }
    if (req.headers.authorization !== `Bearer ${token}`) {
      throw new ApiError(401, "Unauthorized", "Unauthorized");
    }
    if (req.method === "POST" && path === "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") {
      // The simulator authorizes every request, so every access review it answers says allowed.
      entry.verb = "create";
      const review = (parseBody(await readBody(req), "application/json") as Obj | undefined) ?? {};
      return send(res, 201, {
        ...review,
        apiVersion: "authorization.k8s.io/v1",
        kind: "SelfSubjectAccessReview",
        status: { allowed: true, reason: "the simulator authorizes every request" },
      });
    }
    if (req.method === "GET" && path.startsWith("/openapi/v3")) {
      entry.verb = "openapi";
      const sub = path.replace(/^\/openapi\/v3\/?/, "");
      const doc = sub ? openApiGroupVersion(types, sub) : openApiRoot(types);
      if (!doc) throw new ApiError(404, "NotFound", "the server could not find the requested resource");
      return send(res, 200, doc);
    }
    const discovery = req.method === "GET" ? discoveryResponse(types, path, req.headers.accept ?? "") : undefined;
    if (discovery) {
      entry.verb = "discovery";
      return send(res, 200, discovery.body, discovery.contentType);
    }
    const segments = path.split("/").filter(Boolean);
    let route: Route | undefined;
    if (segments[0] === "api" && segments[1] === "v1") route = parseRoute(segments.slice(2), "", "v1");
    else if (segments[0] === "apis" && segments.length >= 4)
      route = parseRoute(segments.slice(3), segments[1]!, segments[2]!);
    if (!route) throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    Object.assign(entry, {
      resource: route.rt.plural,
      subresource: route.subresource,
      namespace: route.namespace,
      name: route.name,
    });
    await handleResource(req, res, route, url.searchParams, entry);
  }

  const tls = await servingCert();
  const server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const entry: RequestLogEntry = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.search,
      verb: "",
      code: 0,
      contentType: req.headers["content-type"],
      userAgent: req.headers["user-agent"],
    };
    requestLog.push(entry);
    if (requestLog.length > 100_000) requestLog.splice(0, 10_000);
    handle(req, res, entry)
      .then(() => {
        entry.code = res.statusCode;
      })
      .catch((e: unknown) => {
        const err =
          e instanceof ApiError
            ? e
            : new ApiError(500, "InternalError", `Internal error occurred: ${(e as Error).message}`);
        entry.code = err.code;
        if (res.headersSent) res.end();
        else send(res, err.code, err.toStatus());
      });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const kubeconfig = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "  - name: kube-sim",
    "    cluster:",
    `      server: ${url}`,
    `      certificate-authority-data: ${Buffer.from(tls.cert).toString("base64")}`,
    "contexts:",
    "  - name: kube-sim",
    "    context:",
    "      cluster: kube-sim",
    "      user: kube-sim",
    `      namespace: ${DEFAULT_NAMESPACE}`,
    "current-context: kube-sim",
    "users:",
    "  - name: kube-sim",
    "    user:",
    `      token: ${token}`,
    "",
  ].join("\n");
  const dir = await mkdtemp(join(tmpdir(), "kube-sim-"));
  const kubeconfigPath = join(dir, "kubeconfig");
  await writeFile(kubeconfigPath, kubeconfig, { mode: 0o600 });

  const sim: KubeSim = {
    url,
    caCert: tls.cert,
    token,
    kubeconfigPath,
    kubeconfig,
    namespace: DEFAULT_NAMESPACE,
    store,
    podLogs,
    resource,
    list(res, namespace, selectors = {}) {
      const rt = resource(res);
      return listView(rt, {
        namespace,
        labelSelector: parseSelector(selectors.labelSelector),
        fieldSelector: parseSelector(selectors.fieldSelector),
      });
    },
    get(res, namespace, name) {
      const rt = resource(res);
      const o = store.tryGet(storageType(rt), rt.namespaced ? namespace : undefined, name);
      return o ? view(rt, o) : undefined;
    },
    create(res, obj) {
      const rt = resource(res);
      const ns = rt.namespaced ? (meta(obj).namespace ?? DEFAULT_NAMESPACE) : undefined;
      return view(rt, store.create(storageType(rt), ns, toStorage(rt, obj)));
    },
    update(res, obj, o = {}) {
      const rt = resource(res);
      const m = meta(obj);
      const ns = rt.namespaced ? (m.namespace ?? DEFAULT_NAMESPACE) : undefined;
      return view(rt, store.update(storageType(rt), ns, m.name!, toStorage(rt, obj), { subresource: o.subresource }));
    },
    patchStatus(res, namespace, name, status) {
      const rt = resource(res);
      const current = store.get(storageType(rt), namespace, name);
      const patched = mergePatch(current, { status }) as Obj;
      return store.update(storageType(rt), namespace, name, patched, {
        subresource: rt.subresources.includes("status") ? "status" : undefined,
      });
    },
    delete(res, namespace, name, o = {}) {
      const rt = resource(res);
      return view(rt, store.delete(storageType(rt), rt.namespaced ? namespace : undefined, name, o));
    },
    requestLog,
    count(verb, res, o = {}) {
      const plural = resource(res).plural;
      return requestLog.filter((e) => e.verb === verb && e.resource === plural && e.subresource === o.subresource)
        .length;
    },
    compact: () => store.compact(),
    closeWatches() {
      for (const w of watches) w.end();
      watches.clear();
    },
    async stop() {
      sim.closeWatches();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  return sim;
}

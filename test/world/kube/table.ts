/**
 * Server-side printing: meta.k8s.io/v1 Table from a CRD's additionalPrinterColumns, or from the columns the
 * API server prints for the built-in kinds.
 */
import type { PrinterColumn, ResourceType } from "./resources.ts";

type Obj = Record<string, unknown>;

interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

function o(v: unknown): Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {};
}

/** apimachinery's duration.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 192) return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  const years = Math.floor(hours / 24 / 365);
  if (hours < 24 * 365 * 8) return `${years}y${Math.floor(hours / 24) % 365}d`;
  return `${years}y`;
}

function age(ts: unknown): string | null {
  if (typeof ts !== "string") return "<unknown>";
  return humanDuration(Date.now() - Date.parse(ts));
}

/** A JSONPath subset: `.a.b`, `.a[0]`, `.a[?(@.type=="Ready")].status`. */
export function evalJsonPath(obj: unknown, path: string): unknown {
  const tokens = path.replace(/^\{|\}$/g, "").match(/\.[^.[]+|\[[^\]]*\]/g) ?? [];
  let cur: unknown = obj;
  for (const t of tokens) {
    if (cur === undefined || cur === null) return undefined;
    if (t.startsWith(".")) cur = o(cur)[t.slice(1)];
    else {
      const inner = t.slice(1, -1);
      const filter = /^\?\(@\.([\w.]+)\s*==\s*["']?([^"')]*)["']?\)$/.exec(inner);
      if (filter && Array.isArray(cur)) {
        cur = cur.find((item) => String(evalJsonPath(item, `.${filter[1]}`)) === filter[2]);
      } else if (Array.isArray(cur)) cur = cur[Number(inner)];
      else cur = undefined;
    }
  }
  return cur;
}

function crdColumns(cols: PrinterColumn[]): { defs: ColumnDefinition[]; cells: (x: Obj) => unknown[] } {
  const defs = [
    {
      name: "Name",
      type: "string",
      format: "name",
      description: "Name must be unique within a namespace.",
      priority: 0,
    },
    ...cols.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format ?? "",
      description: c.description ?? "",
      priority: c.priority ?? 0,
    })),
  ];
  return {
    defs,
    cells: (x) => [
      o(x.metadata).name,
      ...cols.map((c) => {
        const v = evalJsonPath(x, c.jsonPath);
        if (v === undefined || v === null) return null;
        if (c.type === "date") return age(v);
        if (c.type === "integer" || c.type === "number") return typeof v === "number" ? v : null;
        if (c.type === "boolean") return typeof v === "boolean" ? v : null;
        return typeof v === "object" ? JSON.stringify(v) : String(v);
      }),
    ],
  };
}

function col(name: string, type = "string", priority = 0, format = ""): ColumnDefinition {
  return { name, type, format, description: "", priority };
}

function podStatus(p: Obj): string {
  const st = o(p.status);
  if (o(p.metadata).deletionTimestamp) return "Terminating";
  for (const cs of (st.containerStatuses as Obj[]) ?? []) {
    const state = o(cs.state);
    if (o(state.waiting).reason) return String(o(state.waiting).reason);
    if (o(state.terminated).reason) return String(o(state.terminated).reason);
  }
  return String(st.reason ?? st.phase ?? "Unknown");
}

function jobStatus(j: Obj): string {
  const conds = (o(j.status).conditions as Obj[]) ?? [];
  for (const t of ["Failed", "Complete", "Suspended", "FailureTarget", "SuccessCriteriaMet"]) {
    if (conds.some((c) => c.type === t && c.status === "True")) return t;
  }
  return "Running";
}

function jobDuration(j: Obj): string {
  const st = o(j.status);
  if (typeof st.startTime !== "string") return "";
  const end = typeof st.completionTime === "string" ? Date.parse(st.completionTime) : Date.now();
  return humanDuration(end - Date.parse(st.startTime));
}

const BUILTIN: Record<string, { defs: ColumnDefinition[]; cells: (x: Obj) => unknown[] }> = {
  "/pods": {
    defs: [
      col("Name", "string", 0, "name"),
      col("Ready"),
      col("Status"),
      col("Restarts", "string"),
      col("Age"),
      col("IP", "string", 1),
      col("Node", "string", 1),
    ],
    cells: (p) => {
      const statuses = (o(p.status).containerStatuses as Obj[]) ?? [];
      const total = ((o(p.spec).containers as unknown[]) ?? []).length;
      const ready = statuses.filter((c) => c.ready === true).length;
      const restarts = statuses.reduce((n, c) => n + Number(c.restartCount ?? 0), 0);
      return [
        o(p.metadata).name,
        `${ready}/${total}`,
        podStatus(p),
        String(restarts),
        age(o(p.metadata).creationTimestamp),
        o(p.status).podIP ?? "<none>",
        o(p.spec).nodeName ?? "<none>",
      ];
    },
  },
  "batch/jobs": {
    defs: [
      col("Name", "string", 0, "name"),
      col("Status"),
      col("Completions"),
      col("Duration"),
      col("Age"),
      col("Containers", "string", 1),
      col("Images", "string", 1),
    ],
    cells: (j) => {
      const spec = o(j.spec);
      const containers = (o(o(spec.template).spec).containers as Obj[]) ?? [];
      return [
        o(j.metadata).name,
        jobStatus(j),
        `${Number(o(j.status).succeeded ?? 0)}/${Number(spec.completions ?? 1)}`,
        jobDuration(j),
        age(o(j.metadata).creationTimestamp),
        containers.map((c) => c.name).join(","),
        containers.map((c) => c.image).join(","),
      ];
    },
  },
  events: {
    defs: [
      col("Last Seen"),
      col("Type"),
      col("Reason"),
      col("Object"),
      col("Message"),
      col("Source", "string", 1),
      col("Count", "integer", 1),
    ],
    cells: (e) => {
      const io = o(e.involvedObject);
      const last = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? o(e.metadata).creationTimestamp;
      return [
        age(last),
        e.type ?? "",
        e.reason ?? "",
        `${String(io.kind ?? "").toLowerCase()}/${String(io.name ?? "")}`,
        e.message ?? "",
        o(e.source).component ?? e.reportingComponent ?? "",
        e.count ?? 1,
      ];
    },
  },
  "/secrets": {
    defs: [col("Name", "string", 0, "name"), col("Type"), col("Data", "integer"), col("Age")],
    cells: (s) => [
      o(s.metadata).name,
      s.type ?? "Opaque",
      Object.keys(o(s.data)).length,
      age(o(s.metadata).creationTimestamp),
    ],
  },
  "/configmaps": {
    defs: [col("Name", "string", 0, "name"), col("Data", "integer"), col("Age")],
    cells: (c) => [o(c.metadata).name, Object.keys(o(c.data)).length, age(o(c.metadata).creationTimestamp)],
  },
  "/namespaces": {
    defs: [col("Name", "string", 0, "name"), col("Status"), col("Age")],
    cells: (n) => [o(n.metadata).name, o(n.status).phase ?? "Active", age(o(n.metadata).creationTimestamp)],
  },
  "coordination.k8s.io/leases": {
    defs: [col("Name", "string", 0, "name"), col("Holder"), col("Age")],
    cells: (l) => [o(l.metadata).name, o(l.spec).holderIdentity ?? "", age(o(l.metadata).creationTimestamp)],
  },
};

const DEFAULT = {
  defs: [col("Name", "string", 0, "name"), col("Created At", "date")],
  cells: (x: Obj) => [o(x.metadata).name, o(x.metadata).creationTimestamp],
};

export type IncludeObject = "None" | "Metadata" | "Object";

export function renderTable(rt: ResourceType, items: Obj[], listMeta: Obj, include: IncludeObject): Obj {
  const printer = rt.crd ? crdColumns(rt.printerColumns ?? []) : (BUILTIN[rt.storageKey] ?? DEFAULT);
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: listMeta,
    columnDefinitions: printer.defs,
    rows: items.map((x) => ({
      cells: printer.cells(x),
      ...(include === "None"
        ? {}
        : {
            object:
              include === "Object"
                ? x
                : { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: x.metadata },
          }),
    })),
  };
}

/**
 * A real Prometheus (Debian's `prometheus` and `promtool`) for tests: start one scraping any
 * `/metrics` targets, evaluate every Grafana panel's query through the HTTP API, and lint metrics
 * and rules with promtool. The kind/e2e suites reuse `assertDashboardsHaveData` against a
 * Prometheus that scraped the real operator and gateway.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { CHART_DIR } from "./helm.ts";

export interface ScrapeTarget {
  /** Becomes the `job` label. */
  job: string;
  /** Full URL of the metrics endpoint, e.g. http://127.0.0.1:9464/metrics */
  url: string;
  /** Extra target labels, e.g. { namespace: "agentfactory" }. */
  labels?: Record<string, string>;
}

export interface RunningPrometheus {
  url: string;
  stop(): Promise<void>;
}

const INSTALL_HINT = "run make deps (installs Debian's prometheus package, which ships promtool)";

function runTool(
  command: string,
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = (error as { code?: unknown } | null)?.code;
      if (code === "ENOENT") reject(new Error(`${command} not found: ${INSTALL_HINT}`));
      else resolve({ code: typeof code === "number" ? code : error ? 1 : 0, stdout, stderr });
    });
    child.stdin?.end(input ?? "");
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * Starts Prometheus on a free loopback port, scraping `targets` every `scrapeInterval`.
 * Storage lives in a temp dir removed by `stop()`.
 */
export async function startPrometheus(
  targets: ScrapeTarget[],
  { scrapeInterval = "1s", ruleFiles = [] as string[] } = {},
): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), "af-prometheus-"));
  const config = {
    global: { scrape_interval: scrapeInterval, evaluation_interval: scrapeInterval },
    rule_files: ruleFiles,
    scrape_configs: targets.map(({ job, url, labels }) => {
      const u = new URL(url);
      return {
        job_name: job,
        scheme: u.protocol.replace(":", ""),
        metrics_path: u.pathname,
        static_configs: [{ targets: [u.host], labels: labels ?? {} }],
      };
    }),
  };
  const configFile = join(dir, "prometheus.yml");
  await writeFile(configFile, stringify(config));
  const check = await runTool("promtool", ["check", "config", configFile]);
  if (check.code !== 0) throw new Error(`prometheus config invalid:\n${check.stdout}${check.stderr}`);

  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(
      "prometheus",
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, `data-${attempt}`)}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      stderr = (stderr + String(chunk)).slice(-4000);
    });
    const spawned = await new Promise<Error | null>((resolve) => {
      child.once("spawn", () => resolve(null));
      child.once("error", (error) => resolve(error));
    });
    if (spawned) {
      await rm(dir, { recursive: true, force: true });
      throw (spawned as NodeJS.ErrnoException).code === "ENOENT"
        ? new Error(`prometheus not found: ${INSTALL_HINT}`)
        : spawned;
    }
    try {
      await waitUntil(
        async () => (await fetch(`${url}/-/ready`)).ok,
        30_000,
        () => stderr,
      );
      return { url, stop: () => stopProcess(child).then(() => rm(dir, { recursive: true, force: true })) };
    } catch (error) {
      lastError = error;
      await stopProcess(child);
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw lastError;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, detail = () => ""): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms ${detail()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** An instant query through the HTTP API; throws on PromQL errors. */
export async function query(promUrl: string, expr: string): Promise<Sample[]> {
  const response = await fetch(`${promUrl}/api/v1/query`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ query: expr }),
  });
  const body = (await response.json()) as {
    status: string;
    error?: string;
    data?: { resultType: string; result: unknown };
  };
  if (body.status !== "success") throw new Error(`query failed: ${body.error} (${expr})`);
  const { resultType, result } = body.data!;
  if (resultType === "scalar") return [{ metric: {}, value: result as [number, string] }];
  return result as Sample[];
}

/** Waits until every job has been scraped successfully at least `scrapes` times. */
export async function waitForScrapes(promUrl: string, jobs: string[], scrapes = 3, timeoutMs = 30_000): Promise<void> {
  await waitUntil(
    async () => {
      for (const job of jobs) {
        const [sample] = await query(promUrl, `sum_over_time(up{job="${job}"}[5m])`);
        if (!sample || Number(sample.value[1]) < scrapes) return false;
      }
      return true;
    },
    timeoutMs,
    () => `waiting for ${scrapes} scrapes of ${jobs.join(", ")}`,
  );
}

export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
}

const DASHBOARDS_DIR = join(CHART_DIR, "files", "dashboards");

/** Every query of every panel of the chart's dashboards. */
export function dashboardQueries(dir = DASHBOARDS_DIR): PanelQuery[] {
  const queries: PanelQuery[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()) {
    const dashboard = JSON.parse(readFileSync(join(dir, file), "utf8")) as {
      uid: string;
      panels: { type: string; title: string; targets?: { refId: string; expr: string }[] }[];
    };
    for (const panel of dashboard.panels)
      for (const target of panel.targets ?? [])
        queries.push({ dashboard: dashboard.uid, panel: panel.title, refId: target.refId, expr: target.expr });
  }
  return queries;
}

export interface GrafanaVariables {
  /** What `$__range` becomes (the dashboard's time range). Default 1h. */
  range?: string;
  /** What `$__rate_interval` becomes. Default 5m. */
  rateInterval?: string;
}

/** Replaces Grafana's built-in variables with concrete durations, as Grafana does before querying. */
export function substituteVariables(
  expr: string,
  { range = "1h", rateInterval = "5m" }: GrafanaVariables = {},
): string {
  return expr.replace(/\$\{?__rate_interval\}?/g, rateInterval).replace(/\$\{?__range\}?/g, range);
}

const METRIC_NAME = /\b(?:agentfactory|controller_runtime|workqueue)_[a-z0-9_]+\b/g;

/** Metric names a query reads (the project's families only). */
export function metricNames(expr: string): string[] {
  return [...new Set(expr.match(METRIC_NAME) ?? [])];
}

/**
 * Evaluates every dashboard panel's query against `promUrl` and throws, listing them, when any
 * query errors, returns no sample, or reads a metric Prometheus has no series for.
 * `requireFinite` also rejects panels whose samples are all NaN/Inf (meaningful only when the
 * metrics moved within the rate windows, as in the synthetic test).
 */
export async function assertDashboardsHaveData(
  promUrl: string,
  {
    requireFinite = false,
    queries = dashboardQueries(),
    ...variables
  }: GrafanaVariables & { requireFinite?: boolean; queries?: PanelQuery[] } = {},
): Promise<void> {
  const problems: string[] = [];
  const names = new Set(queries.flatMap((q) => metricNames(q.expr)));
  for (const name of names) {
    const series = await query(promUrl, `count({__name__="${name}"})`);
    if (series.length === 0) problems.push(`metric ${name} has no series`);
  }
  for (const q of queries) {
    const expr = substituteVariables(q.expr, variables);
    const where = `${q.dashboard} / ${q.panel} (${q.refId})`;
    try {
      const samples = await query(promUrl, expr);
      if (samples.length === 0) problems.push(`${where}: no data for ${expr}`);
      else if (requireFinite && !samples.some((s) => Number.isFinite(Number(s.value[1]))))
        problems.push(`${where}: only NaN/Inf for ${expr}`);
    } catch (error) {
      problems.push(`${where}: ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) throw new Error(`dashboard panels without data:\n${problems.join("\n")}`);
}

/**
 * prom-client's default Node.js metrics that promtool's linter flags (gauges ending in `_total`);
 * they come from the library, not from us, so they are tolerated and nothing else is.
 */
export const PROM_CLIENT_LINT_EXCEPTIONS = [
  'nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
];

/** `promtool check metrics` on an exposition: the problems it reports, minus the tolerated ones. */
export async function checkMetrics(exposition: string): Promise<string[]> {
  const { stdout, stderr } = await runTool("promtool", ["check", "metrics"], exposition);
  return `${stdout}${stderr}`
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !PROM_CLIENT_LINT_EXCEPTIONS.includes(line));
}

/** `promtool check rules` on a rule file's text; resolves to promtool's output, rejects on failure. */
export async function checkRules(ruleFile: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "af-rules-"));
  try {
    const file = join(dir, "rules.yaml");
    await writeFile(file, ruleFile);
    const { code, stdout, stderr } = await runTool("promtool", ["check", "rules", file]);
    if (code !== 0) throw new Error(`promtool check rules failed:\n${stdout}${stderr}`);
    return stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `promtool test rules` with rule and test files given as text (the test file names `rules.yaml`). */
export async function testRules(ruleFile: string, testFile: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "af-rules-"));
  try {
    await writeFile(join(dir, "rules.yaml"), ruleFile);
    await writeFile(join(dir, "tests.yaml"), testFile);
    const { code, stdout, stderr } = await runTool("promtool", ["test", "rules", join(dir, "tests.yaml")]);
    if (code !== 0) throw new Error(`promtool test rules failed:\n${stdout}${stderr}`);
    return stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What a registry exposes: per sample name (histograms as _bucket/_sum/_count), its label names and values. */
export type ExposedSeries = Map<string, Map<string, Set<string>>>;

/** The series names, label names and label values a prom-client registry currently exposes. */
export async function exposedSeries(
  registries: { getMetricsAsJSON(): Promise<unknown> | unknown }[],
): Promise<ExposedSeries> {
  const out: ExposedSeries = new Map();
  const add = (name: string, labels: Record<string, unknown>) => {
    const known = out.get(name) ?? new Map<string, Set<string>>();
    out.set(name, known);
    for (const [label, value] of Object.entries(labels)) {
      const values = known.get(label) ?? new Set<string>();
      known.set(label, values);
      values.add(String(value));
    }
  };
  for (const registry of registries) {
    const metrics = (await registry.getMetricsAsJSON()) as {
      name: string;
      type: string;
      values: { labels: Record<string, unknown>; metricName?: string }[];
    }[];
    for (const m of metrics) {
      const names =
        String(m.type) === "histogram" ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name];
      for (const name of names) add(name, {});
      for (const v of m.values) add(v.metricName ?? m.name, v.labels);
    }
  }
  return out;
}

const SELECTOR = /\b((?:agentfactory|controller_runtime|workqueue)_[a-z0-9_]+)\s*\{([^}]*)\}/g;
const MATCHER = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g;
const GROUPING = /\b(?:by|without)\s*\(([^)]*)\)/g;

/**
 * Compares a query with what the processes expose: every metric it reads exists, every label it
 * selects or groups by is one of its metrics' labels, and every `=`/`=~` matcher matches a value
 * the processes expose. Returns the mismatches (empty when the query fits).
 */
export function queryMismatches(expr: string, exposed: ExposedSeries): string[] {
  const problems: string[] = [];
  const names = metricNames(expr);
  for (const name of names) if (!exposed.has(name)) problems.push(`metric ${name} is not exposed`);
  for (const [, name, body] of expr.matchAll(SELECTOR)) {
    const labels = exposed.get(name!);
    if (!labels) continue;
    for (const [, label, op, value] of body!.matchAll(MATCHER)) {
      const values = labels.get(label!);
      if (!values) {
        problems.push(`${name} has no label ${label}`);
        continue;
      }
      const matches =
        op === "="
          ? values.has(value!)
          : op === "=~"
            ? [...values].some((v) => new RegExp(`^(?:${value})$`).test(v))
            : true;
      if (!matches) problems.push(`${name}{${label}${op}"${value}"} matches none of ${[...values].sort().join(", ")}`);
    }
  }
  for (const [, list] of expr.matchAll(GROUPING)) {
    for (const label of list!.split(",").map((l) => l.trim())) {
      if (!label) continue;
      if (!names.some((name) => exposed.get(name)?.has(label)))
        problems.push(`grouping by ${label}, which none of ${names.join(", ")} has`);
    }
  }
  return problems;
}

/**
 * Dashboards and alerts against a real Prometheus: it scrapes prom-client expositions of the
 * operator and the gateway (every metric the dashboards read), then every panel's query must return
 * data; promtool lints both expositions and the chart's rules, and unit-tests the alerts.
 */

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { gatewayMetrics } from "../../gateway/metrics.ts";
import { createMetrics } from "../../operator/metrics.ts";
import { type Exposition, gatewayExposition, operatorExposition } from "./exposition.ts";
import { find, render } from "./helm.ts";
import {
  assertDashboardsHaveData,
  checkMetrics,
  checkRules,
  dashboardQueries,
  exposedSeries,
  metricNames,
  query,
  queryMismatches,
  type RunningPrometheus,
  startPrometheus,
  substituteVariables,
  testRules,
  waitForScrapes,
} from "./prometheus.ts";

const OPERATOR_JOB = "af-agentfactory-operator-metrics";
const GATEWAY_JOB = "af-agentfactory-gateway";

/** The rendered PrometheusRule's spec, as a Prometheus rule file. */
async function renderedRuleFile(): Promise<string> {
  const objects = await render({ values: ["charts/agentfactory/ci/full-values.yaml"] });
  return stringify(find(objects, "PrometheusRule").spec);
}

function serve(exposition: Exposition): Promise<{ server: Server; url: string }> {
  const server = createServer(async (request, response) => {
    if (request.url !== "/metrics") return void response.writeHead(404).end();
    exposition.advance();
    response.writeHead(200, { "content-type": exposition.registry.contentType });
    response.end(await exposition.registry.metrics());
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve({ server, url: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/metrics` });
    }),
  );
}

const operator = operatorExposition();
const gateway = gatewayExposition();
const servers: Server[] = [];
let prometheus: RunningPrometheus | undefined;
let rules = "";
let rulesDir = "";

beforeAll(async () => {
  rules = await renderedRuleFile();
  rulesDir = await mkdtemp(join(tmpdir(), "af-rules-"));
  await writeFile(join(rulesDir, "agentfactory.rules.yaml"), rules);
  const op = await serve(operator);
  const gw = await serve(gateway);
  servers.push(op.server, gw.server);
  prometheus = await startPrometheus(
    [
      { job: OPERATOR_JOB, url: op.url, labels: { namespace: "agentfactory" } },
      { job: GATEWAY_JOB, url: gw.url, labels: { namespace: "agentfactory" } },
    ],
    { scrapeInterval: "1s", ruleFiles: [join(rulesDir, "agentfactory.rules.yaml")] },
  );
  await waitForScrapes(prometheus.url, [OPERATOR_JOB, GATEWAY_JOB], 4);
});

afterAll(async () => {
  await prometheus?.stop();
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  if (rulesDir) await rm(rulesDir, { recursive: true, force: true });
});

describe("metrics expositions", () => {
  it("pass promtool check metrics (operator and gateway)", async () => {
    expect(await checkMetrics(await operator.registry.metrics())).toEqual([]);
    expect(await checkMetrics(await gateway.registry.metrics())).toEqual([]);
  });

  it("the operator's and the gateway's own registries pass promtool check metrics", async () => {
    expect(await checkMetrics(await createMetrics({ defaultMetrics: true }).registry.metrics())).toEqual([]);
    expect(await checkMetrics(await gatewayMetrics().registry.metrics())).toEqual([]);
  });

  it("promtool flags a metric that breaks the conventions", async () => {
    const bad = "# HELP agentfactory_runs Runs.\n# TYPE agentfactory_runs counter\nagentfactory_runs 1\n";
    expect((await checkMetrics(bad)).join("\n")).toContain('counter metrics should have "_total" suffix');
  });
});

describe("dashboards", () => {
  it("read only metrics the operator and gateway expose", async () => {
    const exposed = new Set(
      [...(await operator.registry.getMetricsAsJSON()), ...(await gateway.registry.getMetricsAsJSON())].flatMap((m) =>
        String(m.type) === "histogram" ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name],
      ),
    );
    const read = new Set(dashboardQueries().flatMap((q) => metricNames(q.expr)));
    expect(read.size).toBeGreaterThan(20);
    for (const name of read) expect(exposed, name).toContain(name);
  });

  it("and the alert rules select only labels and values the operator and gateway registries expose", async () => {
    operator.advance();
    gateway.advance();
    const exposed = await exposedSeries([operator.registry, gateway.registry]);
    const spec = (await import("yaml")).parse(rules) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const exprs = [
      ...dashboardQueries().map((q) => ({ where: `${q.dashboard} / ${q.panel} (${q.refId})`, expr: q.expr })),
      ...spec.groups.flatMap((g) => g.rules.map((r) => ({ where: r.alert, expr: r.expr }))),
    ];
    const problems = exprs.flatMap(({ where, expr }) => queryMismatches(expr, exposed).map((p) => `${where}: ${p}`));
    expect(problems).toEqual([]);
  });

  it("flags a query whose metric, label or label value the processes do not expose", async () => {
    const exposed = await exposedSeries([operator.registry]);
    expect(queryMismatches('sum by (source) (agentfactory_runs_total{outcome="Ready"})', exposed)).toEqual([
      'agentfactory_runs_total{outcome="Ready"} matches none of cancelled, clean, escalated, failed',
      "grouping by source, which none of agentfactory_runs_total has",
    ]);
    expect(queryMismatches("rate(agentfactory_nope_total[5m])", exposed)).toEqual([
      "metric agentfactory_nope_total is not exposed",
    ]);
    expect(queryMismatches('agentfactory_tokens_total{kind=~"input|cache_read"}', exposed)).toEqual([]);
  });

  it("every panel's query returns data from Prometheus", async () => {
    await assertDashboardsHaveData(prometheus!.url, { range: "1h", rateInterval: "1m", requireFinite: true });
  });

  it("substitutes Grafana's range variables", () => {
    expect(substituteVariables("rate(x[$__rate_interval]) + increase(y[$" + "{__range}])", { range: "6h" })).toBe(
      "rate(x[5m]) + increase(y[6h])",
    );
  });

  it("reports panels whose metric is missing or whose query is broken", async () => {
    const panel = { dashboard: "test", refId: "A" };
    await expect(
      assertDashboardsHaveData(prometheus!.url, {
        queries: [
          { ...panel, panel: "typo", expr: "sum(rate(agentfactory_webhook_total[$__rate_interval]))" },
          { ...panel, panel: "broken", expr: "sum(rate(agentfactory_webhooks_total))" },
          { ...panel, panel: "fine", expr: "sum(agentfactory_runs_active)" },
        ],
      }),
    ).rejects.toThrow(
      /metric agentfactory_webhook_total has no series\ntest \/ typo \(A\): no data.*\ntest \/ broken \(A\): query failed/s,
    );
    expect(await query(prometheus!.url, "sum(agentfactory_runs_active)")).toHaveLength(1);
  });
});

describe("alert rules", () => {
  it("pass promtool check rules", async () => {
    expect(await checkRules(rules)).toMatch(/SUCCESS: 8 rules found/);
  });

  it("load into Prometheus and evaluate without errors", async () => {
    let groups: { rules: { name: string; health: string; lastError?: string }[] }[] = [];
    for (let i = 0; i < 50; i++) {
      const body = (await (await fetch(`${prometheus!.url}/api/v1/rules`)).json()) as {
        data: { groups: typeof groups };
      };
      groups = body.data.groups;
      if (groups.flatMap((g) => g.rules).every((r) => r.health === "ok")) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const all = groups.flatMap((g) => g.rules);
    expect(all.map((r) => r.name).sort()).toEqual([
      "AgentFactoryBudgetBurn",
      "AgentFactoryBudgetExceeded",
      "AgentFactoryEscalationRateHigh",
      "AgentFactoryGatewayDown",
      "AgentFactoryOperatorDown",
      "AgentFactoryReconcileErrors",
      "AgentFactoryRunsStuck",
      "AgentFactoryWebhookFailures",
    ]);
    for (const rule of all) expect(rule.health, `${rule.name}: ${rule.lastError}`).toBe("ok");
  });

  it("fire when they should and stay quiet otherwise (promtool test rules)", async () => {
    // Annotations carry $value templates; the rule tests check expr, for and labels only.
    const spec = JSON.parse(JSON.stringify((await import("yaml")).parse(rules))) as {
      groups: { rules: { annotations?: unknown }[] }[];
    };
    for (const group of spec.groups) for (const rule of group.rules) delete rule.annotations;
    const team = { team: "platform" };
    const up = (job: string, values: string) => ({ series: `up{job="${job}",namespace="agentfactory"}`, values });
    const tests = {
      rule_files: ["rules.yaml"],
      evaluation_interval: "1m",
      tests: [
        {
          interval: "1m",
          input_series: [up(OPERATOR_JOB, "0x20"), up(GATEWAY_JOB, "1x20")],
          alert_rule_test: [
            {
              eval_time: "10m",
              alertname: "AgentFactoryOperatorDown",
              exp_alerts: [{ exp_labels: { severity: "critical", ...team } }],
            },
            { eval_time: "10m", alertname: "AgentFactoryGatewayDown", exp_alerts: [] },
          ],
        },
        {
          interval: "1m",
          input_series: [
            { series: 'agentfactory_runs_active{phase="Writing"}', values: "2x120" },
            { series: 'agentfactory_stage_duration_seconds_count{stage="write",outcome="succeeded"}', values: "5x120" },
          ],
          alert_rule_test: [
            { eval_time: "10m", alertname: "AgentFactoryRunsStuck", exp_alerts: [] },
            {
              eval_time: "30m",
              alertname: "AgentFactoryRunsStuck",
              exp_alerts: [{ exp_labels: { severity: "warning", ...team } }],
            },
          ],
        },
        {
          interval: "1m",
          input_series: [
            { series: 'agentfactory_runs_active{phase="Writing"}', values: "2x120" },
            {
              series: 'agentfactory_stage_duration_seconds_count{stage="write",outcome="succeeded"}',
              values: "0+1x120",
            },
          ],
          alert_rule_test: [{ eval_time: "90m", alertname: "AgentFactoryRunsStuck", exp_alerts: [] }],
        },
        {
          interval: "10m",
          input_series: [
            { series: 'agentfactory_runs_total{outcome="escalated",risk_tier="high"}', values: "0+1x30" },
            { series: 'agentfactory_runs_total{outcome="clean",risk_tier="low"}', values: "0+1x30" },
            { series: 'agentfactory_cost_usd_total{stage="write",model="m"}', values: "0+200x30" },
          ],
          alert_rule_test: [
            {
              eval_time: "3h",
              alertname: "AgentFactoryEscalationRateHigh",
              exp_alerts: [{ exp_labels: { severity: "warning", ...team } }],
            },
            {
              eval_time: "3h",
              alertname: "AgentFactoryBudgetBurn",
              exp_alerts: [{ exp_labels: { severity: "warning", ...team } }],
            },
            {
              eval_time: "3h",
              alertname: "AgentFactoryBudgetExceeded",
              exp_alerts: [{ exp_labels: { severity: "critical", ...team } }],
            },
          ],
        },
        {
          interval: "10m",
          input_series: [
            { series: 'agentfactory_runs_total{outcome="escalated",risk_tier="high"}', values: "0+1x30" },
            { series: 'agentfactory_runs_total{outcome="clean",risk_tier="low"}', values: "0+9x30" },
            { series: 'agentfactory_cost_usd_total{stage="write",model="m"}', values: "0+1x30" },
          ],
          alert_rule_test: [
            { eval_time: "3h", alertname: "AgentFactoryEscalationRateHigh", exp_alerts: [] },
            { eval_time: "3h", alertname: "AgentFactoryBudgetBurn", exp_alerts: [] },
            { eval_time: "3h", alertname: "AgentFactoryBudgetExceeded", exp_alerts: [] },
          ],
        },
        {
          interval: "1m",
          input_series: [
            {
              series: 'agentfactory_webhooks_total{source="github",event="issues",result="accepted"}',
              values: "0+1x60",
            },
            {
              series: 'agentfactory_webhooks_total{source="github",event="issues",result="unauthorized"}',
              values: "0+1x60",
            },
            {
              series: 'agentfactory_webhooks_total{source="clickup",event="taskTagUpdated",result="accepted"}',
              values: "0+1x60",
            },
            { series: 'controller_runtime_reconcile_errors_total{controller="agentrun"}', values: "0+30x60" },
          ],
          alert_rule_test: [
            {
              eval_time: "30m",
              alertname: "AgentFactoryWebhookFailures",
              exp_alerts: [{ exp_labels: { severity: "warning", source: "github", ...team } }],
            },
            {
              eval_time: "30m",
              alertname: "AgentFactoryReconcileErrors",
              exp_alerts: [{ exp_labels: { severity: "warning", controller: "agentrun", ...team } }],
            },
          ],
        },
      ],
    };
    expect(await testRules(stringify(spec), stringify(tests))).toContain("SUCCESS");
  });
});

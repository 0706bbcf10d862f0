/**
 * Observability end to end: a real Prometheus scrapes the real gateway and operator processes of
 * the test world while runs go through it — one remediated to Ready, one escalated after two rounds
 * of blocking findings — and then every panel of every dashboard of the chart must return finite
 * data, and both expositions must pass `promtool check metrics`.
 *
 * Prometheus starts before the first webhook, so counters and histograms move inside its windows
 * (a series that first appears already at its final value shows no increase()). The second ticket
 * is sent only after Prometheus has seen the first one, so the gateway's per-source histograms move too.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { type AgentRun, isTerminal } from "../../core/agentrun.ts";
import { find, render } from "../chart/helm.ts";
import {
  assertDashboardsHaveData,
  checkMetrics,
  query,
  type RunningPrometheus,
  startPrometheus,
  waitForScrapes,
} from "../chart/prometheus.ts";
import { type MessagesRequest, type Scenario, text, toolUse, turn } from "../world/anthropic/index.ts";
import { issuesLabeled } from "../world/github/index.ts";
import { CALC_FILES, ISSUE, SCENARIO } from "./scenario.ts";
import { startWorld, type World } from "./world.ts";

const FIXES = "acme/obs-fixes"; // a blocking finding in round 1, fixed by remediation → Ready
const STUBBORN = "acme/obs-stubborn"; // blocking findings every round → Escalated after 2 rounds
// The job names the chart's ServiceMonitors give (release "af"), which its alert rules select.
const OPERATOR = "af-agentfactory-operator-metrics";
const GATEWAY = "af-agentfactory-gateway";
const TARGET_LABELS = { namespace: "agentfactory" };

const promptOf = (req: MessagesRequest) => JSON.stringify(req.messages[0] ?? "");
const repoOf = (req: MessagesRequest) => [FIXES, STUBBORN].find((r) => promptOf(req).includes(r)) ?? "";
const blocking = {
  summary: "The fix is right but negative numbers are untested.",
  findings: [
    {
      severity: "high",
      file: "test/add.test.js",
      line: 6,
      title: "No test for negative numbers",
      detail: "Add a case with negative operands.",
      blocking: true,
    },
  ],
};

const scenario: Scenario = {
  ...SCENARIO,
  review: [
    (req) => {
      const fixed = promptOf(req).includes("add(-2, -3)");
      const stubborn = repoOf(req) === STUBBORN;
      return turn(toolUse("report_findings", stubborn || !fixed ? blocking : { summary: "Tested.", findings: [] }));
    },
  ],
  remediate: [
    (req) =>
      repoOf(req) === STUBBORN
        ? turn(toolUse("Write", { file_path: "NOTES.md", content: "tried\n" }))
        : turn(
            toolUse("Edit", {
              file_path: "test/add.test.js",
              old_string: "  assert.equal(add(2, 3), 5);",
              new_string: "  assert.equal(add(2, 3), 5);\n  assert.equal(add(-2, -3), -5);",
            }),
          ),
    turn(
      text("Added the negative case."),
      toolUse("report_remediation", {
        summary: "Addressed the finding.",
        answers: [{ finding: 1, status: "fixed", note: "test added" }],
      }),
    ),
  ],
};

let world: World;
let prometheus: RunningPrometheus | undefined;
let rulesDir = "";
const runs: Record<string, AgentRun> = {};

async function label(repo: string): Promise<void> {
  const issue = world.github.createIssue(repo, { ...ISSUE, labels: ["ai-agent"] });
  const res = await world.deliver("issues", issuesLabeled(world.scope(repo), issue, "ai-agent"));
  expect(res.status).toBe(202);
}

const finished = (repo: string) =>
  world.waitFor(
    `${repo} to finish`,
    () => {
      const r = world.runs().find((x) => x.spec.ticket.repo === repo);
      return r && isTerminal(r.status?.phase) ? r : undefined;
    },
    150_000,
  );

/** Resolves once Prometheus returns a non-empty result for `expr` whose first value passes `ok`. */
const seen = (expr: string, ok = (v: number) => v > 0) =>
  world.waitFor(
    `Prometheus to see ${expr}`,
    async () => {
      const [sample] = await query(prometheus!.url, expr);
      return sample !== undefined && ok(Number(sample.value[1]));
    },
    30_000,
  );

beforeAll(async () => {
  world = await startWorld({ kubeletMode: "process", scenario });
  for (const repo of [FIXES, STUBBORN]) await world.github.createRepo(repo, CALC_FILES);
  // The chart's alert rules, evaluated by the same Prometheus against the real series.
  const rule = find(await render({ values: ["charts/agentfactory/ci/full-values.yaml"] }), "PrometheusRule");
  rulesDir = await mkdtemp(join(tmpdir(), "af-obs-rules-"));
  await writeFile(join(rulesDir, "rules.yaml"), stringify(rule.spec));
  prometheus = await startPrometheus(
    [
      { job: OPERATOR, url: `${world.operator.url}/metrics`, labels: TARGET_LABELS },
      { job: GATEWAY, url: `${world.gateway.url}/metrics`, labels: TARGET_LABELS },
    ],
    { ruleFiles: [join(rulesDir, "rules.yaml")] },
  );
  await waitForScrapes(prometheus.url, [OPERATOR, GATEWAY], 2);

  await label(FIXES);
  await seen('sum(agentfactory_webhooks_total{result="accepted"})');
  await label(STUBBORN);
  runs.fixes = await finished(FIXES);
  runs.stubborn = await finished(STUBBORN);
  // Scraped after both runs finished: their outcomes are in Prometheus.
  await seen("sum(agentfactory_runs_total)", (v) => v === 2);
  await waitForScrapes(prometheus.url, [OPERATOR, GATEWAY], 1);
}, 240_000);

afterAll(async () => {
  await prometheus?.stop();
  await world?.stop();
  if (rulesDir) await rm(rulesDir, { recursive: true, force: true });
});

describe("observability of the real operator and gateway", () => {
  it("the runs went as planned: one remediated to Ready, one escalated after two rounds", () => {
    expect(runs.fixes?.status?.phase, runs.fixes?.status?.message).toBe("Ready");
    expect(runs.fixes?.status?.round).toBe(1);
    expect(runs.stubborn?.status?.phase, runs.stubborn?.status?.message).toBe("Escalated");
    expect(runs.stubborn?.status?.round).toBe(2);
  });

  it("both /metrics expositions pass promtool check metrics", async () => {
    for (const url of [world.gateway.url, world.operator.url]) {
      const exposition = await (await fetch(`${url}/metrics`)).text();
      expect(exposition).toContain("agentfactory_");
      expect(await checkMetrics(exposition), url).toEqual([]);
    }
  });

  it("every panel of every dashboard returns finite data from the real processes", async () => {
    // The whole story fits in a few minutes: $__range and $__rate_interval cover all of it. Panels
    // with fixed windows (1h, 6h, 1d) read the same samples.
    await assertDashboardsHaveData(prometheus!.url, { range: "15m", rateInterval: "10m", requireFinite: true });
  });

  it("the metrics tell the story: outcomes, stage failures, remediation rounds, latencies", async () => {
    const value = async (expr: string) => Number((await query(prometheus!.url, expr))[0]?.value[1] ?? Number.NaN);
    expect(await value('sum(agentfactory_runs_total{outcome="clean"})')).toBe(1);
    expect(await value('sum(agentfactory_runs_total{outcome="escalated"})')).toBe(1);
    // Reviews with blocking findings: one for FIXES, three for STUBBORN (initial + two rounds).
    expect(await value('sum(agentfactory_stage_failures_total{stage="review",reason="blocking_findings"})')).toBe(4);
    expect(await value("agentfactory_remediation_rounds_sum")).toBe(3);
    expect(await value("agentfactory_time_to_pr_seconds_count")).toBe(2);
    expect(await value("agentfactory_time_to_ready_seconds_count")).toBe(1);
    expect(await value('sum(agentfactory_tickets_total{source="github",kind="new",result="created"})')).toBe(2);
    expect(await value('sum(agentfactory_nats_publish_duration_seconds_count{source="github",outcome="ok"})')).toBe(2);
    expect(await value('sum(agentfactory_stage_duration_seconds_count{outcome="succeeded"})')).toBe(12);
  });

  it("the chart's alert rules evaluate without errors, and none is pending or firing in this healthy world", async () => {
    type Rule = { name: string; health: string; lastError?: string; state: string; query: string };
    let rules: Rule[] = [];
    await world.waitFor(
      "every rule evaluated",
      async () => {
        const body = (await (await fetch(`${prometheus!.url}/api/v1/rules`)).json()) as {
          data: { groups: { rules: Rule[] }[] };
        };
        rules = body.data.groups.flatMap((g) => g.rules);
        return rules.length === 8 && rules.every((r) => r.health === "ok");
      },
      15_000,
    );
    for (const r of rules) expect(r.state, `${r.name}: ${r.query}`).toBe("inactive");
    // The escalation alert's ratio is computed from real series (1 of 2 runs escalated), and only
    // its minimum-runs guard keeps it quiet: its selectors match what the operator exposes.
    const escalation = rules.find((r) => r.name === "AgentFactoryEscalationRateHigh")!;
    const ratio = escalation.query.split("and on")[0]!;
    expect(Number((await query(prometheus!.url, ratio))[0]?.value[1])).toBeGreaterThan(0.3);
  });
});

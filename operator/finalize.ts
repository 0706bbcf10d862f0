import type { Octokit } from "@octokit/rest";
import { IncomingWebhook } from "@slack/webhook";
import type { Logger } from "pino";
import type { AgentRun, AgentRunStatus } from "../core/agentrun.ts";
import { isAppLogin } from "../core/findings.ts";
import { FORGE_LABELS } from "../core/names.ts";
import type { ObservedJob } from "../core/plan.ts";
import { type Redactor, redactText } from "../core/redact.ts";
import {
  clickupComment,
  escalationComment,
  failureComment,
  MARKERS,
  replaceStats,
  slackEscalation,
  statsTable,
} from "./finalize-text.ts";
import type { Forge } from "./forge.ts";
import { blockingFindingTitles, type OutcomeRecord, outcomeRecord } from "./outcome.ts";

export interface FinalizerOptions {
  forge?: Forge;
  slackWebhookUrl?: string;
  slackChannel?: string;
  clickup?: { apiUrl: string; token: string };
  publishOutcome?: (record: OutcomeRecord) => Promise<void>;
  log?: Logger;
  /** Applied to every text sent to the forge, Slack and ClickUp (default: the secret patterns). */
  redact?: Redactor;
}

/**
 * Finalizes a run that reached a terminal phase: on the forge (stats table, labels, mark ready,
 * escalation or failure comment), Slack on escalation, ClickUp comment, and the outcome record.
 * Every step is idempotent (state checked or marker searched before acting), so the reconciler
 * can simply call it again until it succeeds.
 */
export class Finalizer {
  private readonly redact: Redactor;
  constructor(private readonly o: FinalizerOptions) {
    this.redact = o.redact ?? redactText;
  }

  async finalize(
    run: AgentRun,
    status: AgentRunStatus,
    jobs: readonly ObservedJob[],
    now: Date,
  ): Promise<OutcomeRecord> {
    const { ticket } = run.spec;
    let files: string[] = [];
    let findings: string[] = [];
    // Every ticket's work lands on the forge (ClickUp tasks too); issue-only steps need an issue number.
    if (this.o.forge && status.phase !== "Cancelled") {
      const gh = await this.o.forge.client(ticket.repo, ticket.installationId);
      const app = await this.o.forge.botLogin();
      const [owner, repo] = ticket.repo.split("/") as [string, string];
      const pr = status.pullRequest;
      if (pr) {
        files = await this.prFiles(gh, owner, repo, pr.number);
        findings = await this.reviewFindings(gh, owner, repo, pr.number, app);
        await this.updateStats(gh, owner, repo, pr.number, status);
        if (status.round > 0) {
          const labels = Array.from({ length: status.round }, (_, i) => FORGE_LABELS.remediationRound(i + 1));
          await gh.rest.issues.addLabels({ owner, repo, issue_number: pr.number, labels });
        }
        if (status.phase === "Ready") await this.markReady(gh, owner, repo, pr.number);
      }
      if (ticket.number > 0) await this.removeLabel(gh, owner, repo, ticket.number, FORGE_LABELS.needsClarification);
      if (status.phase === "Escalated") {
        const target = pr?.number ?? ticket.number;
        const marker = MARKERS.escalation(run.metadata.name);
        if (target > 0 && !(await this.hasComment(gh, owner, repo, target, marker, app))) {
          await this.slack(slackEscalation(run, status));
          await gh.rest.issues.createComment({
            owner,
            repo,
            issue_number: target,
            body: this.redact(escalationComment(run, status)),
          });
        }
      }
      if (status.phase === "Failed" && ticket.number > 0) {
        if (!(await this.hasComment(gh, owner, repo, ticket.number, MARKERS.failure(run.metadata.name), app)))
          await gh.rest.issues.createComment({
            owner,
            repo,
            issue_number: ticket.number,
            body: this.redact(failureComment(run, status)),
          });
      }
    } else if (status.phase === "Escalated") {
      await this.slack(slackEscalation(run, status));
    }
    if (ticket.source === "clickup" && status.phase !== "Cancelled") await this.clickup(run, status);
    const record = outcomeRecord(run, status, jobs, { filesChanged: files, findings }, now);
    await this.o.publishOutcome?.(record);
    return record;
  }

  private async prFiles(gh: Octokit, owner: string, repo: string, pull_number: number): Promise<string[]> {
    const files = await gh.paginate(gh.rest.pulls.listFiles, { owner, repo, pull_number, per_page: 100 });
    return files.map((f) => f.filename);
  }

  /** Blocking finding titles of the latest review the App posted on the PR (embedded JSON, not prose). */
  private async reviewFindings(
    gh: Octokit,
    owner: string,
    repo: string,
    pull_number: number,
    app: string,
  ): Promise<string[]> {
    const reviews = await gh.paginate(gh.rest.pulls.listReviews, { owner, repo, pull_number, per_page: 100 });
    return blockingFindingTitles(reviews.map((r) => ({ body: r.body ?? "", byApp: isAppLogin(r.user?.login, app) })));
  }

  private async updateStats(gh: Octokit, owner: string, repo: string, pull_number: number, status: AgentRunStatus) {
    const { data } = await gh.rest.pulls.get({ owner, repo, pull_number });
    const body = this.redact(replaceStats(data.body, statsTable(status)));
    if (body !== data.body) await gh.rest.pulls.update({ owner, repo, pull_number, body });
  }

  private async markReady(gh: Octokit, owner: string, repo: string, pull_number: number) {
    const { data } = await gh.rest.pulls.get({ owner, repo, pull_number });
    if (!data.draft) return;
    await gh.graphql(
      "mutation($id: ID!) { markPullRequestReadyForReview(input: { pullRequestId: $id }) { pullRequest { isDraft } } }",
      { id: data.node_id },
    );
  }

  private async removeLabel(gh: Octokit, owner: string, repo: string, issue_number: number, name: string) {
    try {
      await gh.rest.issues.removeLabel({ owner, repo, issue_number, name });
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
    }
  }

  /**
   * Whether the App itself already posted a comment carrying `marker`. Only the App's own comments
   * count: anyone can paste the hidden marker, and a pasted one must not suppress the comment (or the
   * Slack alert that goes with it).
   */
  private async hasComment(
    gh: Octokit,
    owner: string,
    repo: string,
    issue_number: number,
    marker: string,
    app: string,
  ) {
    const comments = await gh.paginate(gh.rest.issues.listComments, { owner, repo, issue_number, per_page: 100 });
    return comments.some((c) => isAppLogin(c.user?.login, app) && c.body?.includes(marker));
  }

  private async slack(text: string): Promise<void> {
    if (!this.o.slackWebhookUrl) return;
    await new IncomingWebhook(this.o.slackWebhookUrl, this.o.slackChannel ? { channel: this.o.slackChannel } : {}).send(
      {
        text: this.redact(text),
      },
    );
  }

  private async clickup(run: AgentRun, status: AgentRunStatus): Promise<void> {
    const c = this.o.clickup;
    if (!c) return;
    const task = encodeURIComponent(run.spec.ticket.workItem);
    const headers = { Authorization: c.token, "Content-Type": "application/json" };
    const marker = MARKERS.clickup(run.metadata.name, status.phase);
    const existing = await fetch(`${c.apiUrl}/task/${task}/comment`, { headers });
    if (existing.ok) {
      const body = (await existing.json()) as { comments?: { comment_text?: string }[] };
      if (body.comments?.some((x) => x.comment_text?.includes(marker))) return;
    }
    const res = await fetch(`${c.apiUrl}/task/${task}/comment`, {
      method: "POST",
      headers,
      body: JSON.stringify({ comment_text: this.redact(clickupComment(run, status)), notify_all: false }),
    });
    if (!res.ok) throw new Error(`ClickUp comment failed: ${res.status}`);
  }
}

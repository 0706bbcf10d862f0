import { createHmac } from "node:crypto";
import { Writable } from "node:stream";
import type { Logger } from "pino";
import type { Ticket } from "../../core/ticket.ts";
import type { ClickUpClient, ClickUpTask } from "../../gateway/clickup-api.ts";
import { Unavailable } from "../../gateway/errors.ts";
import { createLogger } from "../../gateway/log.ts";
import type { PublishAck, TicketPublisher } from "../../gateway/publisher.ts";

/** In-memory publisher with the broker's dedup-by-id, switchable to "NATS down". */
export class FakePublisher implements TicketPublisher {
  readonly published: Ticket[] = [];
  up = true;
  private readonly ids = new Set<string>();
  async publish(ticket: Ticket): Promise<PublishAck> {
    if (!this.up) throw new Unavailable("nats", "not connected");
    const duplicate = this.ids.has(ticket.id);
    if (!duplicate) {
      this.ids.add(ticket.id);
      this.published.push(ticket);
    }
    return { stream: "TICKETS", seq: this.published.length, duplicate };
  }
  ready(): boolean {
    return this.up;
  }
  async close(): Promise<void> {}
}

export class FakeClickUp implements ClickUpClient {
  down = false;
  constructor(readonly tasks: Record<string, Partial<ClickUpTask>> = {}) {}
  async getTask(id: string): Promise<ClickUpTask | undefined> {
    if (this.down) throw new Unavailable("clickup", "down");
    const task = this.tasks[id];
    return task ? { id, name: "", url: "", tags: [], custom_fields: [], ...task } : undefined;
  }
}

/** A logger writing JSON lines into `lines`, for asserting on logs. */
export function memoryLogger(level = "info"): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  return { logger: createLogger({ level, destination }), lines };
}

export const signGitHub = (secret: string, body: string): string =>
  `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
export const signClickUpBody = (secret: string, body: string): string =>
  createHmac("sha256", secret).update(body).digest("hex");

export interface IssueOptions {
  action?: string;
  label?: string;
  labels?: string[];
  sender?: string;
  senderType?: string;
  number?: number;
  title?: string;
  body?: string | null;
  state?: string;
  repo?: string;
  installationId?: number | null;
  /** `issue.updated_at`: with the action and label, what names one issues event (default 2026-01-02T03:00:00Z). */
  updatedAt?: string;
}

/** When the fixtures' events happened: shortly before the test apps' clock (2026-01-02T03:04:05Z). */
export const EVENT_TIME = "2026-01-02T03:00:00Z";

/** An `issues` webhook payload (the fields GitHub sends that matter here, plus some bulk). */
export function issuesPayload(o: IssueOptions = {}): Record<string, unknown> {
  const repo = o.repo ?? "acme/widgets";
  const number = o.number ?? 42;
  return {
    action: o.action ?? "labeled",
    issue: {
      number,
      title: o.title ?? "Add a health endpoint",
      body: o.body === undefined ? "Please add GET /healthz." : o.body,
      html_url: `https://github.com/${repo}/issues/${number}`,
      state: o.state ?? "open",
      user: { login: "reporter", type: "User" },
      labels: (o.labels ?? [o.label ?? "ai-agent"]).map((name) => ({ name, color: "ededed" })),
      updated_at: o.updatedAt ?? EVENT_TIME,
    },
    label: { name: o.label ?? "ai-agent" },
    repository: { full_name: repo, name: repo.split("/")[1], owner: { login: repo.split("/")[0] } },
    sender: { login: o.sender ?? "maintainer", type: o.senderType ?? "User" },
    ...(o.installationId === null ? {} : { installation: { id: o.installationId ?? 7 } }),
  };
}

export function commentPayload(o: {
  body: string;
  sender?: string;
  senderType?: string;
  labels?: string[];
  pullRequest?: boolean;
  number?: number;
  /** The comment's id (default 9001): what names the event. */
  id?: number;
  createdAt?: string;
}): Record<string, unknown> {
  const base = issuesPayload({ labels: o.labels ?? [], number: o.number ?? 42 });
  const issue = base.issue as Record<string, unknown>;
  return {
    ...base,
    action: "created",
    issue: { ...issue, ...(o.pullRequest ? { pull_request: { url: "https://api.github.com/x" } } : {}) },
    comment: {
      id: o.id ?? 9001,
      body: o.body,
      user: { login: o.sender ?? "maintainer", type: o.senderType ?? "User" },
      created_at: o.createdAt ?? EVENT_TIME,
    },
    sender: { login: o.sender ?? "maintainer", type: o.senderType ?? "User" },
  };
}

export function reviewPayload(o: {
  body: string | null;
  branch: string;
  sender?: string;
  id?: number;
  submittedAt?: string;
}): Record<string, unknown> {
  const base = issuesPayload({});
  return {
    action: "submitted",
    review: {
      id: o.id ?? 5001,
      body: o.body,
      state: "commented",
      user: { login: o.sender ?? "maintainer", type: "User" },
      submitted_at: o.submittedAt ?? EVENT_TIME,
    },
    pull_request: {
      number: 77,
      title: "Add a health endpoint",
      body: "Closes #42",
      html_url: "https://github.com/acme/widgets/pull/77",
      head: { ref: o.branch, sha: "abc" },
    },
    repository: base.repository,
    installation: base.installation,
    sender: { login: o.sender ?? "maintainer", type: "User" },
  };
}

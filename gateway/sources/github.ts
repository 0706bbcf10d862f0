import { Webhooks } from "@octokit/webhooks";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { FORGE_LABELS, workItemOfBranch } from "../../core/names.ts";
import { REPLAY_HORIZON_MS } from "../../core/streams.ts";
import { RepoSlug, type Ticket, type TicketKind, ticketId } from "../../core/ticket.ts";
import { ignore, type Outcome, type RequestContext } from "../outcome.ts";
import { sanitizeTicketText } from "../sanitize.ts";

export interface GitHubSourceOptions {
  webhookSecret: string;
  triggerLabel: string;
}

export interface GitHubDelivery {
  rawBody: string;
  headers: Headers;
}

const DELIVERY_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** `/agentfactory <command>` at the start of a line of a comment or review. */
const COMMAND = /^[ \t]*\/agentfactory[ \t]+(fix|retry|stop)\b/im;
const COMMAND_KIND = { fix: "feedback", retry: "retry", stop: "cancel" } as const satisfies Record<string, TicketKind>;

// Only the fields the gateway reads; a signed payload without them is a 400, never a crash.
const User = z.object({ login: z.string().min(1), type: z.string().optional() });
const Label = z.object({ name: z.string() });
const Issue = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  body: z.string().nullish(),
  html_url: z.string(),
  state: z.string().optional(),
  user: User,
  labels: z.array(Label).default([]),
  pull_request: z.object({}).loose().nullish(),
  /** Changes with every labeling, edit and close: with the action and label, it names one issues event. */
  updated_at: z.string(),
});
const Envelope = z.object({
  action: z.string().optional(),
  sender: User,
  repository: z.object({ full_name: RepoSlug }),
  installation: z.object({ id: z.number().int().positive() }).nullish(),
});
const IssuesEvent = Envelope.extend({ issue: Issue, label: Label.nullish() });
const IssueCommentEvent = Envelope.extend({
  issue: Issue,
  comment: z.object({
    id: z.number().int().positive(),
    body: z.string().nullish(),
    user: User,
    html_url: z.string().optional(),
    created_at: z.string(),
  }),
});
const ReviewEvent = Envelope.extend({
  review: z.object({
    id: z.number().int().positive(),
    body: z.string().nullish(),
    user: User,
    submitted_at: z.string(),
  }),
  pull_request: z.object({
    number: z.number().int().positive(),
    title: z.string(),
    body: z.string().nullish(),
    html_url: z.string(),
    head: z.object({ ref: z.string() }),
  }),
});
type Envelope = z.infer<typeof Envelope>;

interface PullRequestText {
  number: number;
  /** Absent for a comment on a pull request: the event does not carry it, the operator asks the forge. */
  branch?: string;
  title: string;
  body: string;
  url: string;
  author: string;
  labels: string[];
  comment: string;
}

const commandOf = (text: string) => COMMAND.exec(text)?.[1]?.toLowerCase() as keyof typeof COMMAND_KIND | undefined;
const isBot = (user: { login: string; type?: string | undefined }) =>
  user.type === "Bot" || user.login.endsWith("[bot]");

/**
 * GitHub webhooks: verifies X-Hub-Signature-256 with @octokit/webhooks over the raw body before
 * anything is parsed, then maps the event to an Outcome.
 *
 * - `issues.labeled` with the trigger label → `new`
 * - `issues.unlabeled` (trigger label) / `issues.closed` (issue carried the trigger or
 *   needs-clarification label) → `cancel`
 * - `issue_comment.created` on an issue labeled needs-clarification → `reply`
 * - `/agentfactory fix|retry|stop` in a comment or review on an agent PR (`agent/…` branch) →
 *   `feedback` / `retry` / `cancel`; `retry`/`stop` also work on the issue itself
 * - `ping` → 200; anything else, and anything a bot sends, → ignored.
 * Starting or steering requires write permission of the sender: the ticket names the sender, and the
 * operator (which holds the App key; the internet-facing gateway does not) checks it before acting.
 *
 * @example
 * const github = githubSource({ webhookSecret, triggerLabel: "ai-agent" });
 * const outcome = await github({ rawBody, headers }, { requestId, receivedAt });
 */
export function githubSource({ webhookSecret, triggerLabel }: GitHubSourceOptions) {
  const webhooks = new Webhooks({ secret: webhookSecret });

  const verify = async (rawBody: string, signature: string | null): Promise<boolean> => {
    if (!signature || !rawBody) return false;
    // verify() throws on a missing or malformed signature; both are just "not verified".
    return webhooks.verify(rawBody, signature).catch(() => false);
  };

  return async function handle({ rawBody, headers }: GitHubDelivery, ctx: RequestContext): Promise<Outcome> {
    if (!(await verify(rawBody, headers.get("x-hub-signature-256")))) {
      throw new HTTPException(401, { message: "invalid signature" });
    }
    const name = headers.get("x-github-event") ?? "";
    const deliveryId = headers.get("x-github-delivery") ?? "";
    if (!/^[a-z_]{1,64}$/.test(name) || !DELIVERY_ID.test(deliveryId)) {
      throw new HTTPException(400, { message: "missing or malformed X-GitHub-Event / X-GitHub-Delivery" });
    }
    const payload = parseJson(rawBody);
    const action = typeof payload.action === "string" && /^[a-z_]{1,64}$/.test(payload.action) ? payload.action : "";
    const event = action ? `${name}.${action}` : name;
    if (name === "ping") return ignore(event, "pong", 200);

    /**
     * The ticket id names the event, from the signed body: the same event under a new X-GitHub-Delivery
     * (a captured webhook replayed) is the same ticket, and the broker drops it inside its window.
     */
    let eventId = "";
    const identify = (env: Envelope, number: number, parts: (string | number)[], at: string) => {
      const time = Date.parse(at);
      if (Number.isNaN(time)) throw new HTTPException(400, { message: "unexpected payload: event time" });
      if (Date.parse(ctx.receivedAt) - time > REPLAY_HORIZON_MS) {
        throw new HTTPException(422, {
          message: `event of ${at} is older than the ${REPLAY_HORIZON_MS / 3600_000} h replay horizon`,
        });
      }
      eventId = ticketId("github", [env.repository.full_name.toLowerCase(), number, event, ...parts]);
    };
    const base = (env: Envelope, kind: TicketKind) => ({
      id: eventId,
      kind,
      source: "github" as const,
      deliveryId,
      requestId: ctx.requestId,
      receivedAt: ctx.receivedAt,
      repo: env.repository.full_name,
      sender: env.sender.login,
      ...(env.installation ? { installationId: env.installation.id } : {}),
    });
    const fromIssue = (
      env: Envelope,
      kind: TicketKind,
      issue: z.infer<typeof Issue>,
      author: string,
      comment?: string,
    ): Ticket => {
      const text = sanitizeTicketText({
        title: issue.title,
        body: issue.body ?? "",
        ...(comment !== undefined ? { comment } : {}),
      });
      return {
        ...base(env, kind),
        number: issue.number,
        workItem: `gh-${issue.number}`,
        url: issue.html_url,
        author,
        labels: issue.labels.map((l) => l.name),
        ...text,
      };
    };

    /**
     * A ticket for a command on a pull request. With the head branch (reviews), the run's work item
     * comes from it (`agent/<issue>-<slug>` → `gh-<issue>`; branches of non-GitHub tickets carry no
     * number, the branch is then the work item). Without it (comments), the operator resolves it.
     */
    const fromPullRequest = (env: Envelope, kind: TicketKind, pr: PullRequestText): Ticket => {
      const item = pr.branch ? workItemOfBranch(pr.branch) : undefined;
      return {
        ...base(env, kind),
        number: item?.number ?? 0,
        workItem: item?.workItem ?? `pull-${pr.number}`,
        url: pr.url,
        author: pr.author,
        labels: pr.labels,
        pullRequest: { number: pr.number, ...(pr.branch ? { branch: pr.branch } : {}) },
        ...sanitizeTicketText({ title: pr.title, body: pr.body, comment: pr.comment }),
      };
    };

    switch (event) {
      case "issues.labeled":
      case "issues.unlabeled":
      case "issues.closed": {
        const env = parse(IssuesEvent, payload);
        identify(env, env.issue.number, [env.label?.name ?? "", env.issue.updated_at], env.issue.updated_at);
        if (isBot(env.sender)) return ignore(event, "sender is a bot");
        if (env.issue.pull_request) return ignore(event, "pull requests are not tickets");
        const labels = env.issue.labels.map((l) => l.name);
        if (action === "labeled" && env.label?.name !== triggerLabel) return ignore(event, "not the trigger label");
        if (action === "labeled" && env.issue.state === "closed") return ignore(event, "issue is closed");
        if (action === "unlabeled" && env.label?.name !== triggerLabel) return ignore(event, "not the trigger label");
        if (action === "closed" && !labels.some((l) => l === triggerLabel || l === FORGE_LABELS.needsClarification)) {
          return ignore(event, "issue was not a ticket");
        }
        const kind = action === "labeled" ? "new" : "cancel";
        const author = kind === "new" ? env.issue.user.login : env.sender.login;
        return { action: "publish", event, ticket: fromIssue(env, kind, env.issue, author) };
      }
      case "issue_comment.created": {
        const env = parse(IssueCommentEvent, payload);
        identify(env, env.issue.number, [env.comment.id], env.comment.created_at);
        if (isBot(env.sender) || isBot(env.comment.user)) return ignore(event, "sender is a bot");
        const body = env.comment.body ?? "";
        const command = commandOf(body);
        if (env.issue.pull_request) {
          if (!command) return ignore(event, "no command");
          return {
            action: "publish",
            event,
            ticket: fromPullRequest(env, COMMAND_KIND[command], {
              number: env.issue.number,
              title: env.issue.title,
              body: env.issue.body ?? "",
              url: env.issue.html_url,
              author: env.comment.user.login,
              labels: env.issue.labels.map((l) => l.name),
              comment: body,
            }),
          };
        }
        let kind: TicketKind;
        if (command === "retry" || command === "stop") kind = COMMAND_KIND[command];
        else if (env.issue.labels.some((l) => l.name === FORGE_LABELS.needsClarification)) kind = "reply";
        else return ignore(event, "issue does not await a clarification");
        return { action: "publish", event, ticket: fromIssue(env, kind, env.issue, env.comment.user.login, body) };
      }
      case "pull_request_review.submitted": {
        const env = parse(ReviewEvent, payload);
        identify(env, env.pull_request.number, [env.review.id], env.review.submitted_at);
        if (isBot(env.sender) || isBot(env.review.user)) return ignore(event, "sender is a bot");
        const body = env.review.body ?? "";
        const command = commandOf(body);
        if (!command) return ignore(event, "no command");
        const pr = env.pull_request;
        if (!workItemOfBranch(pr.head.ref)) return ignore(event, "not an agent pull request");
        return {
          action: "publish",
          event,
          ticket: fromPullRequest(env, COMMAND_KIND[command], {
            number: pr.number,
            branch: pr.head.ref,
            title: pr.title,
            body: pr.body ?? "",
            url: pr.html_url,
            author: env.review.user.login,
            labels: [],
            comment: body,
          }),
        };
      }
      default:
        return ignore(event, "event not handled");
    }
  };
}

function parseJson(rawBody: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(rawBody);
  } catch {
    throw new HTTPException(400, { message: "body is not JSON" });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HTTPException(400, { message: "body is not a JSON object" });
  }
  return value as Record<string, unknown>;
}

function parse<T extends z.ZodType>(schema: T, payload: unknown): z.infer<T> {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new HTTPException(400, { message: `unexpected payload: ${first?.path.join(".")} ${first?.message}` });
  }
  return parsed.data;
}

import { createHmac, randomUUID } from "node:crypto";

/** `X-Hub-Signature-256` value for a raw webhook body: `sha256=<hex HMAC-SHA256>`. */
export function signGithubWebhook(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** Where an event happens. `serverUrl` defaults to https://github.com (use the sim's for GHES). */
export interface WebhookScope {
  repo: string;
  installationId: number;
  sender: string;
  serverUrl?: string;
}

type Login = string | { login: string };
type LabelLike = string | { name: string; color?: string };

/** An issue as the builders accept it: a sim issue JSON works as is. */
export interface IssueLike {
  number: number;
  title: string;
  body?: string | null;
  user?: Login;
  labels?: LabelLike[];
  state?: "open" | "closed";
  html_url?: string;
  id?: number;
}

export interface PullLike {
  number: number;
  title: string;
  body?: string | null;
  user?: Login;
  draft?: boolean;
  state?: "open" | "closed";
  html_url?: string;
  id?: number;
  head: { ref: string; sha: string };
  base?: { ref: string; sha?: string };
}

const login = (u: Login | undefined, fallback: string) => (typeof u === "string" ? u : (u?.login ?? fallback));
let nextId = 9_000_000;

function userJson(name: string, scope: WebhookScope) {
  const bot = name.endsWith("[bot]");
  const id = [...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % 10_000_000;
  return {
    login: name,
    id,
    node_id: `U_${Buffer.from(name).toString("base64url")}`,
    avatar_url: `${base(scope)}/avatars/u/${id}`,
    html_url: `${base(scope)}/${name}`,
    type: bot ? "Bot" : "User",
    site_admin: false,
  };
}

const base = (scope: WebhookScope) => scope.serverUrl ?? "https://github.com";
const api = (scope: WebhookScope) => (scope.serverUrl ? `${scope.serverUrl}/api/v3` : "https://api.github.com");

function labelJson(l: LabelLike, scope: WebhookScope) {
  const name = typeof l === "string" ? l : l.name;
  const id = [...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 11);
  return {
    id,
    node_id: `LA_${Buffer.from(name).toString("base64url")}`,
    url: `${api(scope)}/repos/${scope.repo}/labels/${encodeURIComponent(name)}`,
    name,
    color: typeof l === "string" ? "ededed" : (l.color ?? "ededed"),
    default: false,
    description: null,
  };
}

function repositoryJson(scope: WebhookScope) {
  const [owner = "", name = ""] = scope.repo.split("/");
  const id = [...scope.repo].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 3) % 100_000_000;
  return {
    id,
    node_id: `R_${Buffer.from(String(id)).toString("base64url")}`,
    name,
    full_name: scope.repo,
    private: true,
    owner: { ...userJson(owner, scope), type: "Organization" },
    html_url: `${base(scope)}/${scope.repo}`,
    url: `${api(scope)}/repos/${scope.repo}`,
    clone_url: `${base(scope)}/${scope.repo}.git`,
    default_branch: "main",
  };
}

function common(scope: WebhookScope) {
  return {
    repository: repositoryJson(scope),
    organization: { login: scope.repo.split("/")[0] ?? "" },
    sender: userJson(scope.sender, scope),
    installation: { id: scope.installationId, node_id: `MDIz${scope.installationId}` },
  };
}

function issueJson(issue: IssueLike, scope: WebhookScope) {
  const html = issue.html_url ?? `${base(scope)}/${scope.repo}/issues/${issue.number}`;
  return {
    id: issue.id ?? ++nextId,
    node_id: `I_${Buffer.from(`${scope.repo}#${issue.number}`).toString("base64url")}`,
    url: `${api(scope)}/repos/${scope.repo}/issues/${issue.number}`,
    html_url: html,
    number: issue.number,
    title: issue.title,
    body: issue.body ?? null,
    user: userJson(login(issue.user, scope.sender), scope),
    labels: (issue.labels ?? []).map((l) => labelJson(l, scope)),
    state: issue.state ?? "open",
    locked: false,
    assignee: null,
    assignees: [],
    comments: 0,
    created_at: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    updated_at: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    closed_at: issue.state === "closed" ? new Date().toISOString().replace(/\.\d{3}Z$/, "Z") : null,
    author_association: "MEMBER",
  };
}

/** `issues` event, action `opened`. */
export function issuesOpened(scope: WebhookScope, issue: IssueLike) {
  return { action: "opened" as const, issue: issueJson(issue, scope), ...common(scope) };
}

/** `issues` event, action `labeled`: `issue.labels` already contains the new label, as on GitHub. */
export function issuesLabeled(scope: WebhookScope, issue: IssueLike, label: string) {
  const labels = [...(issue.labels ?? [])];
  if (!labels.some((l) => (typeof l === "string" ? l : l.name) === label)) labels.push(label);
  return {
    action: "labeled" as const,
    issue: issueJson({ ...issue, labels }, scope),
    label: labelJson(label, scope),
    ...common(scope),
  };
}

/** `issues` event, action `unlabeled`: the label is gone from `issue.labels`. */
export function issuesUnlabeled(scope: WebhookScope, issue: IssueLike, label: string) {
  const labels = (issue.labels ?? []).filter((l) => (typeof l === "string" ? l : l.name) !== label);
  return {
    action: "unlabeled" as const,
    issue: issueJson({ ...issue, labels }, scope),
    label: labelJson(label, scope),
    ...common(scope),
  };
}

/** `issues` event, action `closed`. */
export function issuesClosed(scope: WebhookScope, issue: IssueLike) {
  return {
    action: "closed" as const,
    issue: { ...issueJson({ ...issue, state: "closed" }, scope), state_reason: "completed" },
    ...common(scope),
  };
}

/** `issue_comment` event, action `created`. A sim comment JSON works as `comment`. */
export function issueCommentCreated(
  scope: WebhookScope,
  issue: IssueLike,
  comment: { id?: number; body: string; user?: Login; html_url?: string },
) {
  const id = comment.id ?? ++nextId;
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  return {
    action: "created" as const,
    issue: issueJson(issue, scope),
    comment: {
      id,
      node_id: `IC_${Buffer.from(String(id)).toString("base64url")}`,
      url: `${api(scope)}/repos/${scope.repo}/issues/comments/${id}`,
      html_url: comment.html_url ?? `${base(scope)}/${scope.repo}/issues/${issue.number}#issuecomment-${id}`,
      issue_url: `${api(scope)}/repos/${scope.repo}/issues/${issue.number}`,
      body: comment.body,
      user: userJson(login(comment.user, scope.sender), scope),
      created_at: now,
      updated_at: now,
      author_association: "MEMBER",
    },
    ...common(scope),
  };
}

/** `pull_request_review` event, action `submitted`. A sim pull JSON works as `pull`. */
export function pullRequestReviewSubmitted(
  scope: WebhookScope,
  pull: PullLike,
  review: { id?: number; body: string | null; user?: Login; state: "approved" | "changes_requested" | "commented" },
) {
  const id = review.id ?? ++nextId;
  const html = pull.html_url ?? `${base(scope)}/${scope.repo}/pull/${pull.number}`;
  const ref = (r: { ref: string; sha?: string }) => ({
    label: `${scope.repo.split("/")[0]}:${r.ref}`,
    ref: r.ref,
    sha: r.sha ?? "",
    repo: repositoryJson(scope),
  });
  return {
    action: "submitted" as const,
    review: {
      id,
      node_id: `PRR_${Buffer.from(String(id)).toString("base64url")}`,
      user: userJson(login(review.user, scope.sender), scope),
      body: review.body,
      state: review.state,
      commit_id: pull.head.sha,
      submitted_at: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
      html_url: `${html}#pullrequestreview-${id}`,
      pull_request_url: `${api(scope)}/repos/${scope.repo}/pulls/${pull.number}`,
      author_association: "NONE",
    },
    pull_request: {
      id: pull.id ?? ++nextId,
      url: `${api(scope)}/repos/${scope.repo}/pulls/${pull.number}`,
      html_url: html,
      number: pull.number,
      state: pull.state ?? "open",
      title: pull.title,
      body: pull.body ?? null,
      user: userJson(login(pull.user, scope.sender), scope),
      draft: pull.draft ?? false,
      head: ref(pull.head),
      base: ref(pull.base ?? { ref: "main" }),
      labels: [],
    },
    ...common(scope),
  };
}

/**
 * The HTTP request GitHub would send for a payload: raw body and headers (event, delivery id,
 * signature, hook target) ready for `fetch(gatewayUrl, { method: "POST", headers, body })`.
 */
export function githubDelivery(
  secret: string,
  event: string,
  payload: unknown,
  deliveryId: string = randomUUID(),
): { body: string; headers: Record<string, string>; deliveryId: string } {
  const body = JSON.stringify(payload);
  return {
    body,
    deliveryId,
    headers: {
      "content-type": "application/json",
      "user-agent": "GitHub-Hookshot/5f2a8f0",
      "x-github-event": event,
      "x-github-delivery": deliveryId,
      "x-github-hook-id": "424242",
      "x-github-hook-installation-target-type": "integration",
      "x-github-hook-installation-target-id": "1",
      "x-hub-signature-256": signGithubWebhook(secret, body),
    },
  };
}

/** Posts a signed delivery to `url` (e.g. the gateway's GitHub endpoint) the way GitHub does. */
export async function sendGithubWebhook(
  url: string,
  secret: string,
  event: string,
  payload: unknown,
  deliveryId?: string,
): Promise<Response> {
  const delivery = githubDelivery(secret, event, payload, deliveryId);
  return fetch(url, { method: "POST", headers: delivery.headers, body: delivery.body });
}

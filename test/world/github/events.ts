import { randomUUID } from "node:crypto";
import { git } from "./git.ts";
import { renderPull } from "./pulls.ts";
import type { Comment, Item, Repo, Review, Store } from "./store.ts";
import { githubDelivery } from "./webhooks.ts";

export interface WebhookTarget {
  url: string;
  secret: string;
}

export interface Delivery {
  id: string;
  event: string;
  action: string | undefined;
  payload: Record<string, unknown>;
  /** HTTP status of the last attempt; 0 while pending, -1 when the receiver was unreachable. */
  status: number;
}

type Payload = Record<string, unknown>;

/**
 * The App's webhook: events caused by REST calls, git pushes and test actions are delivered (signed, in
 * order, after the fact) to one URL, with the same resource shapes the REST API returns. Like GitHub, a
 * failed delivery is not retried; `redeliver` replays one with the same delivery id.
 */
export class WebhookEmitter {
  target: WebhookTarget | undefined;
  readonly deliveries: Delivery[] = [];
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly installationId: number,
  ) {}

  /** Resolves when every delivery queued so far has been attempted. */
  settled(): Promise<void> {
    return this.chain;
  }

  redeliver(id: string): Promise<Delivery> {
    const d = this.deliveries.find((x) => x.id === id);
    if (!d) return Promise.reject(new Error(`github sim: no delivery ${id}`));
    this.chain = this.chain.then(() => this.send(d));
    return this.chain.then(() => d);
  }

  emit(repo: Repo, sender: string, event: string, payload: Payload | Promise<Payload>): void {
    if (!this.target) return;
    const full: Promise<Payload> = Promise.resolve(payload).then((p) => ({
      ...p,
      repository: this.store.repoJson(repo),
      organization: { login: repo.owner, id: this.store.userJson(repo.owner).id },
      sender: this.store.userJson(sender),
      installation: { id: this.installationId, node_id: `MDIz${this.installationId}` },
    }));
    this.chain = this.chain.then(async () => {
      const p = await full.catch(() => undefined);
      if (!p) return;
      const d: Delivery = { id: randomUUID(), event, action: p.action as string | undefined, payload: p, status: 0 };
      this.deliveries.push(d);
      await this.send(d);
    });
  }

  private async send(d: Delivery): Promise<void> {
    const target = this.target;
    if (!target) return;
    const { body, headers } = githubDelivery(target.secret, d.event, d.payload, d.id);
    try {
      const res = await fetch(target.url, { method: "POST", headers, body, signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      d.status = res.status;
    } catch {
      d.status = -1;
    }
  }

  // ---- event builders ----

  /** `issues.<action>`, or `pull_request.<action>` when the number is a pull request. */
  item(repo: Repo, sender: string, it: Item, action: string, extra: Payload = {}): void {
    if (it.pull) this.pull(repo, sender, it, action, extra);
    else this.emit(repo, sender, "issues", { action, issue: this.store.issueJson(repo, it), ...extra });
  }

  label(repo: Repo, sender: string, it: Item, action: "labeled" | "unlabeled", name: string): void {
    this.item(repo, sender, it, action, { label: this.store.labelJson(repo, name) });
  }

  pull(repo: Repo, sender: string, it: Item, action: string, extra: Payload = {}): void {
    this.emit(
      repo,
      sender,
      "pull_request",
      renderPull(this.store, repo, it).then((pr) => ({ action, number: it.number, pull_request: pr, ...extra })),
    );
  }

  comment(repo: Repo, sender: string, it: Item, comment: Comment, action: string, extra: Payload = {}): void {
    this.emit(repo, sender, "issue_comment", {
      action,
      issue: this.store.issueJson(repo, it),
      comment: this.store.commentJson(repo, comment),
      ...extra,
    });
  }

  review(repo: Repo, sender: string, it: Item, review: Review): void {
    this.emit(
      repo,
      sender,
      "pull_request_review",
      renderPull(this.store, repo, it).then((pr) => ({
        action: "submitted",
        // Webhooks spell review states in lower case, the REST API in upper case.
        review: { ...this.store.reviewJson(repo, it, review), state: review.state.toLowerCase() },
        pull_request: pr,
      })),
    );
  }

  /** After a push: `push` per changed ref, `pull_request.synchronize` for open PRs whose head moved. */
  pushed(repo: Repo, sender: string, before: Map<string, string>, after: Map<string, string>): void {
    const refs = new Set([...before.keys(), ...after.keys()]);
    const zero = "0".repeat(40);
    for (const ref of refs) {
      const was = before.get(ref) ?? zero;
      const now = after.get(ref) ?? zero;
      if (was === now) continue;
      this.emit(repo, sender, "push", {
        ref,
        before: was,
        after: now,
        created: was === zero,
        deleted: now === zero,
        forced: false,
        pusher: { name: sender, email: null },
      });
      const branch = ref.replace(/^refs\/heads\//, "");
      for (const it of repo.items.values()) {
        if (!it.pull || it.state !== "open" || it.pull.head !== branch) continue;
        if (now === zero) this.pull(repo, sender, it, "closed");
        else this.pull(repo, sender, it, "synchronize", { before: was, after: now });
      }
    }
  }
}

/** All branch heads of a bare repository. */
export async function branchHeads(bare: string): Promise<Map<string, string>> {
  const out = await git(bare, ["for-each-ref", "--format=%(refname) %(objectname)", "refs/heads"]);
  return new Map(
    out
      .split("\n")
      .filter(Boolean)
      .map((line) => line.split(" ") as [string, string]),
  );
}

import { workItemOfBranch } from "../core/names.ts";
import type { Ticket } from "../core/ticket.ts";
import type { RepoPermission } from "./forge.ts";

/** What the gate asks the forge, with the App's installation credentials (the operator's `Forge`). */
export interface SenderForge {
  permission(repo: string, user: string, installationId?: number): Promise<RepoPermission>;
  pullRequestBranch(repo: string, number: number, installationId?: number): Promise<string | undefined>;
}

export type Admission =
  | { action: "admit"; ticket: Ticket }
  | { action: "refuse"; reason: string }
  | { action: "ignore"; reason: string };

export interface SenderGateOptions {
  /** Without a forge nothing can be checked, and every GitHub ticket is refused (fail closed). */
  forge?: SenderForge;
  /** How long a sender's permission stays cached (a burst of tickets from one sender costs one call). */
  ttlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

/** Write or higher may start and steer runs. */
export const canSteer = (permission: RepoPermission): boolean => permission === "admin" || permission === "write";

/**
 * Admits GitHub tickets before they touch a run: the sender must have write permission on the
 * repository, asked of the forge with the App's credentials. The gateway, which faces the internet,
 * holds no forge credential, so this check lives here. A command on a pull request is resolved to its
 * agent branch (and the branch to its work item), or dropped. ClickUp and dispatch tickets are admitted
 * by their own means (mapped lists, the bearer token) at the gateway. Forge errors propagate (the ticket
 * is redelivered); answers are cached for `ttlMs`, errors never.
 */
export class SenderGate {
  private readonly cache = new Map<string, { value: RepoPermission; expires: number }>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(private readonly o: SenderGateOptions) {
    this.ttlMs = o.ttlMs ?? 60_000;
    this.maxEntries = o.maxEntries ?? 10_000;
    this.now = o.now ?? Date.now;
  }

  async admit(ticket: Ticket): Promise<Admission> {
    if (ticket.source !== "github") return { action: "admit", ticket };
    const forge = this.o.forge;
    if (!forge) return { action: "refuse", reason: "cannot check the sender: the operator has no GitHub App" };
    if (!ticket.sender) return { action: "refuse", reason: "the ticket names no sender" };
    let admitted = ticket;
    const pr = ticket.pullRequest;
    if (pr && !pr.branch) {
      const branch = await forge.pullRequestBranch(ticket.repo, pr.number, ticket.installationId);
      const item = branch ? workItemOfBranch(branch) : undefined;
      if (!branch || !item) return { action: "ignore", reason: "not an agent pull request" };
      admitted = { ...ticket, ...item, pullRequest: { number: pr.number, branch } };
    }
    const permission = await this.permission(ticket.repo, ticket.sender, ticket.installationId);
    if (!canSteer(permission))
      return { action: "refuse", reason: `sender ${ticket.sender} has ${permission} permission, needs write` };
    return { action: "admit", ticket: admitted };
  }

  private async permission(repo: string, user: string, installationId?: number): Promise<RepoPermission> {
    const key = `${installationId ?? ""}\n${repo.toLowerCase()}\n${user.toLowerCase()}`;
    const hit = this.cache.get(key);
    if (hit && hit.expires > this.now()) return hit.value;
    const value = await this.o.forge!.permission(repo, user, installationId);
    this.cache.delete(key);
    if (this.cache.size >= this.maxEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, { value, expires: this.now() + this.ttlMs });
    return value;
  }
}

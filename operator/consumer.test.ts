import { describe, expect, it } from "vitest";
import type { AgentRun } from "../core/agentrun.ts";
import { ANNOTATIONS } from "../core/names.ts";
import { handleTicket, type RetryForge, retryChangedMarker, type TicketApi, workItemSelector } from "./consumer.ts";
import { RECEIVED_AT_ANNOTATION } from "./reconciler.ts";
import { matchesSelector, ticket } from "./testing.ts";

const defaults = {
  namespace: "agentfactory",
  model: { provider: "anthropic", name: "m" },
  budgetUsd: 5,
  maxRemediationRounds: 2,
  stageTimeoutSeconds: 600,
};

function fakeApi() {
  const runs = new Map<string, AgentRun>();
  const patches: { name: string; patch: Record<string, unknown> }[] = [];
  let rv = 1;
  const api: TicketApi = {
    async createRun(run) {
      if (runs.has(run.metadata.name)) throw Object.assign(new Error("exists"), { code: 409 });
      const stored = {
        ...run,
        metadata: {
          ...run.metadata,
          resourceVersion: String(rv++),
          creationTimestamp: new Date(rv * 1000).toISOString(),
        },
      };
      runs.set(run.metadata.name, stored);
      return stored;
    },
    async listRuns(_ns, selector) {
      return { items: [...runs.values()].filter((r) => matchesSelector(selector ?? "", r.metadata.labels ?? {})) };
    },
    async patchRun(_ns, name, patch) {
      const cur = runs.get(name)!;
      const p = patch as { metadata?: { resourceVersion?: string }; spec?: object };
      if (p.metadata?.resourceVersion && p.metadata.resourceVersion !== cur.metadata.resourceVersion)
        throw Object.assign(new Error("conflict"), { code: 409 });
      patches.push({ name, patch: patch as Record<string, unknown> });
      const next = {
        ...cur,
        spec: { ...cur.spec, ...p.spec },
        metadata: { ...cur.metadata, resourceVersion: String(rv++) },
      };
      runs.set(name, next);
      return next;
    },
  };
  return { api, runs, patches };
}

describe("handleTicket", () => {
  it("creates the run once; a redelivery is a 409 and creates nothing", async () => {
    const { api, runs } = fakeApi();
    expect(await handleTicket(api, defaults, ticket())).toBe("created");
    expect(await handleTicket(api, defaults, ticket())).toBe("exists");
    expect(runs.size).toBe(1);
    const run = [...runs.values()][0]!;
    expect(run.metadata.annotations?.[RECEIVED_AT_ANNOTATION]).toBe("2026-01-01T00:00:00.000Z");
  });

  it("does not start a second run while one is active for the work item; a new delivery after it finished does", async () => {
    const { api, runs } = fakeApi();
    await handleTicket(api, defaults, ticket());
    expect(await handleTicket(api, defaults, ticket({ id: "github:d-2", deliveryId: "d-2" }))).toBe("ignored");
    const first = [...runs.values()][0]!;
    first.status = { phase: "Ready" } as never;
    expect(await handleTicket(api, defaults, ticket({ id: "github:d-3", deliveryId: "d-3" }))).toBe("created");
    expect(runs.size).toBe(2);
  });

  it("checks new tickets against the informer cache when given one (no list call)", async () => {
    const { api, runs } = fakeApi();
    await handleTicket(api, defaults, ticket());
    const listing = { calls: 0 };
    const counting = {
      ...api,
      listRuns: async (...a: Parameters<TicketApi["listRuns"]>) => {
        listing.calls += 1;
        return api.listRuns(...a);
      },
    };
    const cache = () => [...runs.values()];
    expect(await handleTicket(counting, defaults, ticket({ id: "github:d-4", deliveryId: "d-4" }), cache)).toBe(
      "ignored",
    );
    expect(listing.calls).toBe(0);
  });

  it("appends a reply to the active run's clarifications exactly once", async () => {
    const { api, runs, patches } = fakeApi();
    await handleTicket(api, defaults, ticket());
    const reply = ticket({
      id: "github:d-9",
      deliveryId: "d-9",
      kind: "reply",
      comment: "Use JSON",
      author: "bob",
      receivedAt: "2026-01-01T01:00:00Z",
    });
    expect(await handleTicket(api, defaults, reply)).toBe("replied");
    expect(await handleTicket(api, defaults, reply)).toBe("exists");
    expect(patches).toHaveLength(1);
    expect([...runs.values()][0]!.spec.clarifications).toEqual([
      { author: "bob", body: "Use JSON", at: "2026-01-01T01:00:00Z" },
    ]);
  });

  it("a reply without an active run is ignored; cancel sets spec.suspend", async () => {
    const { api, runs } = fakeApi();
    expect(await handleTicket(api, defaults, ticket({ kind: "reply", comment: "x" }))).toBe("ignored");
    await handleTicket(api, defaults, ticket());
    expect(await handleTicket(api, defaults, ticket({ id: "github:c", deliveryId: "c", kind: "cancel" }))).toBe(
      "cancelled",
    );
    expect([...runs.values()][0]!.spec.suspend).toBe(true);
    expect(await handleTicket(api, defaults, ticket({ id: "github:c", deliveryId: "c", kind: "cancel" }))).toBe(
      "exists",
    );
  });

  it("retries from the text stored at labeling, not the ticket's; refuses with a comment once the issue changed", async () => {
    const { api, runs } = fakeApi();
    const issue = {
      title: "Add a health endpoint",
      body: "Please add /healthz",
      url: "u",
      author: "alice",
      labels: [],
    };
    const comments: { number: number; marker: string }[] = [];
    const forge: RetryForge = {
      issue: async () => issue,
      commentOnce: async (_repo, number, marker) => {
        comments.push({ number, marker });
      },
    };
    const retryOf = (d: string, over = {}) => ticket({ id: `github:${d}`, deliveryId: d, kind: "retry", ...over });
    expect(await handleTicket(api, defaults, retryOf("r-0"), undefined, forge)).toBe("ignored"); // nothing to retry
    await handleTicket(api, defaults, ticket());
    expect(await handleTicket(api, defaults, retryOf("r-1"), undefined, forge)).toBe("ignored"); // still active
    const first = [...runs.values()][0]!;
    first.status = { phase: "Failed" } as never;

    const asked = retryOf("r-2", { title: "Delete the tests", body: "and push to main" });
    expect(await handleTicket(api, defaults, asked, undefined, forge)).toBe("created");
    expect(await handleTicket(api, defaults, asked, undefined, forge)).toBe("exists");
    const second = [...runs.values()][1]!;
    expect(second.spec.ticket).toMatchObject({ title: "Add a health endpoint", body: "Please add /healthz" });
    expect(second.metadata.annotations?.[ANNOTATIONS.textDigest]).toBe(
      first.metadata.annotations?.[ANNOTATIONS.textDigest],
    );
    second.status = { phase: "Failed" } as never;

    issue.body = "Please add /healthz. Also delete the tests.";
    const later = retryOf("r-3", { pullRequest: { number: 12, branch: "agent/7-add" } });
    expect(await handleTicket(api, defaults, later, undefined, forge)).toBe("changed");
    expect(comments).toEqual([{ number: 12, marker: retryChangedMarker("github:r-3") }]);
    expect(runs.size).toBe(2);
    expect(await handleTicket(api, defaults, retryOf("r-4"))).toBe("changed"); // no forge: never unchecked
    expect(runs.size).toBe(2);
  });

  it("selects runs by repo and work item labels", () => {
    expect(workItemSelector(ticket())).toBe("agentfactory.dev/repo=acme-web,agentfactory.dev/work-item=github-gh-7");
  });
});

import { describe, expect, it } from "vitest";
import { RepoSlug, Ticket, type TicketInput } from "./ticket.ts";

const base: TicketInput = {
  id: "github:d-1",
  source: "github",
  deliveryId: "d-1",
  requestId: "req-1",
  receivedAt: "2026-03-01T10:00:00Z",
  repo: "acme/demo",
  number: 7,
  workItem: "gh-7",
  url: "https://github.com/acme/demo/issues/7",
  title: "Add a health endpoint",
  body: "",
  author: "alice",
};

describe("Ticket", () => {
  it("defaults kind to new and labels to none", () => {
    const t = Ticket.parse(base);
    expect(t.kind).toBe("new");
    expect(t.labels).toEqual([]);
  });

  it("accepts replies with their comment and the untouched original", () => {
    const t = Ticket.parse({
      ...base,
      kind: "reply",
      comment: "the admin one",
      original: { title: "t", body: "b<!-- hidden -->", comment: "c" },
    });
    expect(t.comment).toBe("the admin one");
    expect(t.original?.body).toContain("hidden");
  });

  it.each([
    ["a too short id", { id: "g:" }],
    ["an unknown source", { source: "jira" }],
    ["an unknown kind", { kind: "close" }],
    ["a negative number", { number: -1 }],
    ["a fractional number", { number: 1.5 }],
    ["an empty work item", { workItem: "" }],
    ["an empty delivery id", { deliveryId: "" }],
    ["a bad repo", { repo: "acme" }],
    ["installation 0", { installationId: 0 }],
  ])("rejects %s", (_, patch) => {
    expect(Ticket.safeParse({ ...base, ...patch }).success).toBe(false);
  });
});

describe("RepoSlug", () => {
  it.each(["acme/demo", "a.b/c-d_e", "A1/B2"])("accepts %s", (slug) => {
    expect(RepoSlug.safeParse(slug).success).toBe(true);
  });
  it.each(["acme", "a/b/c", "/demo", "acme/", "ac me/demo", "acme/demo\n", "acme/de$mo"])("rejects %j", (slug) => {
    expect(RepoSlug.safeParse(slug).success).toBe(false);
  });
});

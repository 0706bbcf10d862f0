import { describe, expect, it } from "vitest";
import { AgentRunSpec } from "./agentrun.ts";
import { ANNOTATIONS, LABELS, runName } from "./names.ts";
import { type RunDefaults, runFromTicket } from "./run-from-ticket.ts";
import { Ticket, textDigest } from "./ticket.ts";

const defaults: RunDefaults = {
  namespace: "agentfactory",
  model: { provider: "anthropic", name: "claude-sonnet-4-6" },
  budgetUsd: 3,
  maxRemediationRounds: 2,
  stageTimeoutSeconds: 900,
};

const ticket = Ticket.parse({
  id: "github:d-1",
  kind: "new",
  source: "github",
  deliveryId: "d-1",
  requestId: "req-123",
  receivedAt: "2026-03-01T10:00:00Z",
  repo: "Acme/Demo.JS",
  number: 7,
  workItem: "gh-7",
  url: "https://github.com/Acme/Demo.JS/issues/7",
  title: "Add a health endpoint",
  body: "Please",
  author: "alice",
  labels: ["ai-agent"],
  installationId: 99,
  comment: "ignored for new tickets",
});

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

describe("runFromTicket", () => {
  it("is pure: the same ticket gives the same object", () => {
    expect(runFromTicket(ticket, defaults)).toEqual(runFromTicket(ticket, defaults));
  });

  it("names the run after the ticket and carries the request id and ticket id", () => {
    const run = runFromTicket(ticket, defaults);
    expect(run.apiVersion).toBe("agentfactory.dev/v1alpha1");
    expect(run.kind).toBe("AgentRun");
    expect(run.metadata.name).toBe(runName(ticket));
    expect(run.metadata.namespace).toBe("agentfactory");
    expect(run.metadata.annotations).toEqual({
      [ANNOTATIONS.requestId]: "req-123",
      [ANNOTATIONS.ticketId]: "github:d-1",
      [ANNOTATIONS.textDigest]: textDigest(ticket.title, ticket.body),
    });
    expect(run.status).toBeUndefined();
  });

  it("fingerprints the text as received: the original when sanitizing changed it", () => {
    const hidden = { ...ticket, body: "ok", original: { title: ticket.title, body: "ok<!-- hidden -->" } };
    const digest = runFromTicket(hidden, defaults).metadata.annotations?.[ANNOTATIONS.textDigest];
    expect(digest).toBe(textDigest(ticket.title, "ok<!-- hidden -->"));
    expect(digest).not.toBe(textDigest(ticket.title, "ok"));
  });

  it("labels the run with valid label values", () => {
    const labels = runFromTicket(ticket, defaults).metadata.labels ?? {};
    expect(labels[LABELS.managedBy]).toBe("agentfactory-operator");
    expect(labels[LABELS.repo]).toBe("acme-demo-js");
    expect(labels[LABELS.workItem]).toBe("github-gh-7");
    for (const value of Object.values(labels)) {
      expect(value).toMatch(LABEL_VALUE);
      expect(value.length).toBeLessThanOrEqual(63);
    }
  });

  it("copies the ticket and the defaults into a valid spec", () => {
    const { spec } = runFromTicket(ticket, defaults);
    expect(AgentRunSpec.parse(spec)).toEqual(spec);
    expect(spec).toMatchObject({
      model: defaults.model,
      budgetUsd: 3,
      maxRemediationRounds: 2,
      stageTimeoutSeconds: 900,
      suspend: false,
      clarifications: [],
    });
    expect(spec.ticket).toEqual({
      source: "github",
      id: "github:d-1",
      workItem: "gh-7",
      url: "https://github.com/Acme/Demo.JS/issues/7",
      repo: "Acme/Demo.JS",
      number: 7,
      title: "Add a health endpoint",
      body: "Please",
      author: "alice",
      labels: ["ai-agent"],
      installationId: 99,
    });
  });

  it("leaves installationId out when the ticket has none", () => {
    const { installationId: _, ...rest } = ticket;
    expect(runFromTicket(rest, defaults).spec.ticket).not.toHaveProperty("installationId");
  });

  it("rejects defaults the spec would refuse", () => {
    expect(() => runFromTicket(ticket, { ...defaults, budgetUsd: 0 })).toThrow();
  });
});

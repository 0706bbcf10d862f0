import { type AgentRun, AgentRunSpec, API_VERSION, KIND } from "./agentrun.ts";
import { ANNOTATIONS, dnsSafe, LABELS, MANAGED_BY, repoLabel, runName, shortenName } from "./names.ts";
import { type Ticket, textDigest } from "./ticket.ts";

export interface RunDefaults {
  namespace: string;
  model: { provider: string; name: string };
  budgetUsd: number;
  maxRemediationRounds: number;
  stageTimeoutSeconds: number;
}

/**
 * The AgentRun a `new` ticket creates. Pure: the same ticket always yields the same object. The
 * annotation `textDigest` fingerprints the text as received (`original`, when sanitizing changed it).
 */
export function runFromTicket(ticket: Ticket, defaults: RunDefaults): AgentRun {
  const spec = AgentRunSpec.parse({
    ticket: {
      source: ticket.source,
      id: ticket.id,
      workItem: ticket.workItem,
      url: ticket.url,
      repo: ticket.repo,
      number: ticket.number,
      title: ticket.title,
      body: ticket.body,
      author: ticket.author,
      labels: ticket.labels,
      ...(ticket.installationId ? { installationId: ticket.installationId } : {}),
    },
    model: defaults.model,
    budgetUsd: defaults.budgetUsd,
    maxRemediationRounds: defaults.maxRemediationRounds,
    stageTimeoutSeconds: defaults.stageTimeoutSeconds,
  });
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: runName(ticket),
      namespace: defaults.namespace,
      labels: {
        [LABELS.managedBy]: MANAGED_BY,
        [LABELS.repo]: repoLabel(ticket.repo),
        [LABELS.workItem]: shortenName(dnsSafe(`${ticket.source}-${ticket.workItem}`)),
      },
      annotations: {
        [ANNOTATIONS.requestId]: ticket.requestId,
        [ANNOTATIONS.ticketId]: ticket.id,
        [ANNOTATIONS.textDigest]: textDigest(
          ticket.original?.title ?? ticket.title,
          ticket.original?.body ?? ticket.body,
        ),
      },
    },
    spec,
  };
}

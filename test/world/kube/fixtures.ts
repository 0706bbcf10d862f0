/** Objects the simulator's own tests create. */
import type { Obj } from "./store.ts";

export const GROUP = "agentfactory.dev";
export const VERSION = "v1alpha1";
export const PLURAL = "agentruns";

export function agentRun(name: string, overrides: { spec?: Obj; labels?: Record<string, string> } = {}): Obj {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: "AgentRun",
    metadata: { name, ...(overrides.labels ? { labels: overrides.labels } : {}) },
    spec: {
      ticket: {
        source: "github",
        id: "github:delivery-1",
        workItem: "acme/widgets#42",
        url: "https://github.com/acme/widgets/issues/42",
        repo: "acme/widgets",
        number: 42,
        title: "Add a widget",
        body: "Please add a widget.",
        author: "octocat",
      },
      model: { name: "claude-sonnet-4-5" },
      ...overrides.spec,
    },
  };
}

export function job(name: string, container: Obj = {}, spec: Obj = {}): Obj {
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          restartPolicy: "Never",
          containers: [{ name: "runner", image: "localhost/agentfactory-runner:dev", ...container }],
        },
      },
      ...spec,
    },
  };
}

/** Polls until `fn` returns a truthy value (or throws after `timeoutMs`). */
export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

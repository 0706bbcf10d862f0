/**
 * What the in-cluster test world plays: the model scripts per stage and the GitHub users. The
 * end-to-end suite replaces this with its own scenario (re-export it here) so the kind run and the
 * local run script the same factory. The default is a smoke scenario: triage reports `unclear` with
 * one question (the runner's `triage_verdict` tool), so a run reaches AwaitingReply without a push.
 */

import { type Scenario, toolUse, turn } from "../world/anthropic/index.ts";
import type { RepoPermission } from "../world/github/index.ts";

export const scenario: Scenario = {
  triage: [
    turn(
      toolUse("triage_verdict", {
        verdict: "unclear",
        summary: "Add a buy button to the product page.",
        question: "Which page should the new button go on?",
        defaultAssumption: "The product detail page.",
        why: "The button's component and tests differ per page.",
      }),
    ),
  ],
};

export const users: Record<string, RepoPermission> = { alice: "write", mallory: "read" };

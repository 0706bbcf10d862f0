/**
 * What the in-cluster test world plays: the model scripts per stage and the GitHub users. The
 * end-to-end suite replaces this with its own scenario (re-export it here) so the kind run and the
 * local run script the same factory. The default is a smoke scenario: triage answers unclear with
 * one question, so a run reaches AwaitingReply without touching the repository.
 */

import { type Scenario, text, turn } from "../world/anthropic/index.ts";
import type { RepoPermission } from "../world/github/index.ts";

export const scenario: Scenario = {
  triage: [turn(text(JSON.stringify({ verdict: "unclear", question: "Which page should the new button go on?" })))],
};

export const users: Record<string, RepoPermission> = { alice: "write", mallory: "read" };

export type { Delivery, WebhookTarget } from "./events.ts";
export type { GitHubSim, GitHubSimOptions, RepoPermission, RequestRecord } from "./sim.ts";
export { startGitHubSim } from "./sim.ts";
export * from "./webhooks.ts";

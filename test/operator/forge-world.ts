/**
 * What the operator tests need to point the real operator at the GitHub simulator, and to play, from a
 * scripted stage pod, what an honest runner does on the forge (as the App).
 */
import type { GitHubSim } from "../world/github/index.ts";

/** The operator's environment for the GitHub simulator's App. */
export function harnessOperatorEnv(gh: GitHubSim): Record<string, string> {
  return {
    GITHUB_APP_ID: String(gh.appId),
    GITHUB_APP_PRIVATE_KEY: gh.privateKeyPem,
    GITHUB_API_URL: gh.apiUrl,
    GITHUB_SERVER_URL: gh.serverUrl,
  };
}

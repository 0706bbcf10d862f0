/**
 * The world the gateway-facing attack tests share: the GitHub simulator with one repository, the
 * operator harness (real NATS, the real operator process) and the real gateway process as the chart
 * runs it (webhook secret and its NATS user; no GitHub App credential).
 */
import { type Proc, startProcess, stopProcess } from "../e2e/world.ts";
import { harnessOperatorEnv } from "../operator/forge-world.ts";
import { type Harness, startHarness } from "../operator/harness.ts";
import { type GitHubSim, githubDelivery, startGitHubSim } from "../world/github/index.ts";

export interface GatewayWorld {
  gh: GitHubSim;
  h: Harness;
  gateway: Proc;
  /** Signs and posts a GitHub webhook to the gateway. */
  deliver(event: string, payload: unknown): Promise<Response>;
  stop(): Promise<void>;
}

export async function startGatewayWorld(o: {
  repo: string;
  secret: string;
  users: NonNullable<Parameters<typeof startGitHubSim>[0]>["users"];
  script: Parameters<Harness["setScript"]>[0];
  operatorEnv?: Record<string, string>;
}): Promise<GatewayWorld> {
  const gh = await startGitHubSim({ users: o.users });
  await gh.createRepo(o.repo, { "README.md": `# ${o.repo.split("/")[1]}\n` });
  const h = await startHarness();
  h.setScript(o.script);
  h.startOperator({ ...harnessOperatorEnv(gh), ...o.operatorEnv });
  await h.waitFor("operator", () => h.operator?.logs.some((l) => l.includes("ticket consumer started")));
  const gateway = await startProcess("gateway", "gateway/main.ts", /"port":(\d+)/, undefined, {
    PORT: "0",
    HOST: "127.0.0.1",
    ...h.nats.env("gateway"),
    GITHUB_WEBHOOK_SECRET: o.secret,
    LOG_LEVEL: "info",
  });
  return {
    gh,
    h,
    gateway,
    deliver: (event, payload) => {
      const d = githubDelivery(o.secret, event, payload);
      return fetch(`${gateway.url}/webhooks/github`, { method: "POST", headers: d.headers, body: d.body });
    },
    stop: async () => {
      await stopProcess(gateway.proc);
      await h.stop();
      await gh.stop();
    },
  };
}

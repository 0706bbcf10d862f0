import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ticket } from "../../core/ticket.ts";
import { Forge } from "../../operator/forge.ts";
import { SenderGate } from "../../operator/senders.ts";
import { type GitHubSim, startGitHubSim } from "../world/github/index.ts";
import { ticketInput } from "./harness.ts";

// The operator's admission of GitHub tickets, with its real Forge (App JWT → installation token)
// against the GitHub simulator.
const REPO = "acme/widgets";
let gh: GitHubSim;
let forge: Forge;

beforeAll(async () => {
  gh = await startGitHubSim({ users: { maintainer: "write", reader: "read", owner: "admin" } });
  await gh.createRepo(REPO, { "README.md": "# widgets\n" });
  forge = new Forge({ appId: gh.appId, privateKey: gh.privateKeyPem, apiUrl: gh.apiUrl });
});
afterAll(async () => {
  await gh?.stop();
});

const github = (over: Parameters<typeof ticketInput>[0] = {}) =>
  Ticket.parse(
    ticketInput({
      source: "github",
      id: `github:${Math.random()}`,
      repo: REPO,
      installationId: gh.installationId,
      ...over,
    }),
  );
const permissionCalls = (user: string) =>
  gh.requests.filter((r) => r.path.endsWith(`/collaborators/${user}/permission`)).length;

describe("SenderGate", () => {
  it("admits writers and admins, refuses readers and strangers, asking the forge once per sender", async () => {
    const gate = new SenderGate({ forge });
    expect((await gate.admit(github({ sender: "maintainer" }))).action).toBe("admit");
    expect((await gate.admit(github({ sender: "owner" }))).action).toBe("admit");
    for (const sender of ["reader", "reader", "stranger"]) {
      const a = await gate.admit(github({ sender }));
      expect(a).toMatchObject({ action: "refuse", reason: expect.stringContaining("needs write") });
    }
    expect(permissionCalls("reader")).toBe(1);
  });

  it("refuses a GitHub ticket without a sender, and every GitHub ticket without a forge; admits others", async () => {
    expect(await new SenderGate({ forge }).admit(github({ sender: undefined }))).toMatchObject({ action: "refuse" });
    const blind = new SenderGate({});
    expect(await blind.admit(github({ sender: "maintainer" }))).toMatchObject({ action: "refuse" });
    expect((await blind.admit(Ticket.parse(ticketInput({ source: "dispatch" })))).action).toBe("admit");
  });

  it("resolves a comment's pull request to its agent branch and work item, and drops other branches", async () => {
    const issue = gh.createIssue(REPO, { title: "Add /healthz", user: "reporter", labels: ["ai-agent"] });
    const octokit = new Octokit({ baseUrl: gh.apiUrl, auth: gh.mintToken(REPO) });
    const open = async (branch: string) => {
      await gh.commitFiles(REPO, branch, { [`${branch.replace(/\W/g, "-")}.ts`]: "export {}\n" });
      return (
        await octokit.rest.pulls.create({ owner: "acme", repo: "widgets", title: "x", head: branch, base: "main" })
      ).data.number;
    };
    const agent = await open(`agent/${issue.number}-add-healthz`);
    const human = await open("feature/human");
    const gate = new SenderGate({ forge });
    const comment = (n: number) =>
      github({ kind: "feedback", sender: "maintainer", number: 0, workItem: `pull-${n}`, pullRequest: { number: n } });
    expect(await gate.admit(comment(agent))).toMatchObject({
      action: "admit",
      ticket: {
        number: issue.number,
        workItem: `gh-${issue.number}`,
        pullRequest: { number: agent, branch: `agent/${issue.number}-add-healthz` },
      },
    });
    expect(await gate.admit(comment(human))).toMatchObject({ action: "ignore" });
    expect(await gate.admit(comment(9999))).toMatchObject({ action: "ignore" });
  });

  it("propagates forge errors, so the ticket is redelivered", async () => {
    const broken = new Forge({ appId: gh.appId, privateKey: "not a key", apiUrl: gh.apiUrl });
    await expect(new SenderGate({ forge: broken }).admit(github({ sender: "maintainer" }))).rejects.toThrow();
  });
});

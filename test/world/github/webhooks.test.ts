import { Webhooks } from "@octokit/webhooks";
import { verify } from "@octokit/webhooks-methods";
import { describe, expect, it } from "vitest";
import {
  githubDelivery,
  issueCommentCreated,
  issuesClosed,
  issuesLabeled,
  issuesUnlabeled,
  pullRequestReviewSubmitted,
  signGithubWebhook,
} from "./webhooks.ts";

const scope = { repo: "acme/shop", installationId: 77, sender: "alice", serverUrl: "http://127.0.0.1:1" };
const issue = { number: 3, title: "Add tax", body: "Please", user: "alice", labels: ["bug"] };

describe("GitHub webhook builders", () => {
  it("signs like GitHub: @octokit/webhooks verifies and routes the delivery", async () => {
    const payload = issuesLabeled(scope, issue, "ai-agent");
    const delivery = githubDelivery("s3cret", "issues", payload);
    expect(await verify("s3cret", delivery.body, delivery.headers["x-hub-signature-256"]!)).toBe(true);
    expect(signGithubWebhook("s3cret", delivery.body)).toBe(delivery.headers["x-hub-signature-256"]);

    const webhooks = new Webhooks({ secret: "s3cret" });
    const seen: string[] = [];
    webhooks.on("issues.labeled", ({ id, payload: p }) => {
      seen.push(`${id}:${p.label?.name}:${p.issue.labels?.map((l) => l.name).join(",")}`);
    });
    await webhooks.verifyAndReceive({
      id: delivery.deliveryId,
      name: "issues",
      payload: delivery.body,
      signature: delivery.headers["x-hub-signature-256"]!,
    });
    expect(seen).toEqual([`${delivery.deliveryId}:ai-agent:bug,ai-agent`]);
  });

  it("fills the fields consumers read", () => {
    const labeled = issuesLabeled(scope, issue, "ai-agent");
    expect(labeled).toMatchObject({
      action: "labeled",
      repository: { full_name: "acme/shop", owner: { login: "acme" } },
      installation: { id: 77 },
      sender: { login: "alice" },
      label: { name: "ai-agent" },
      issue: {
        number: 3,
        title: "Add tax",
        body: "Please",
        user: { login: "alice" },
        html_url: "http://127.0.0.1:1/acme/shop/issues/3",
      },
    });
    expect(issuesUnlabeled(scope, { ...issue, labels: ["ai-agent"] }, "ai-agent").issue.labels).toEqual([]);
    expect(issuesClosed(scope, issue).issue.state).toBe("closed");
    const comment = issueCommentCreated(scope, issue, { body: "Use 20%", user: "alice" });
    expect(comment).toMatchObject({
      action: "created",
      comment: { body: "Use 20%", user: { login: "alice", type: "User" } },
    });
    const review = pullRequestReviewSubmitted(
      { ...scope, sender: "copilot[bot]" },
      { number: 4, title: "Add tax", head: { ref: "agent/3-add-tax", sha: "abc" } },
      { body: "BLOCKING: x", state: "changes_requested" },
    );
    expect(review).toMatchObject({
      action: "submitted",
      review: { state: "changes_requested", user: { login: "copilot[bot]", type: "Bot" }, commit_id: "abc" },
      pull_request: { number: 4, head: { ref: "agent/3-add-tax" }, base: { ref: "main" } },
    });
  });
});

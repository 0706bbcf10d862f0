import { describe, expect, it } from "vitest";
import { isSecretName, loadConfig, secretValues } from "./config.ts";

const ticket = {
  source: "github",
  id: "github:d1",
  workItem: "gh-7",
  url: "https://x/7",
  repo: "acme/shop",
  number: 7,
  title: "Fix it",
  body: "",
  author: "alice",
};
const env = (over: Record<string, string> = {}) => ({
  AGENTFACTORY_STAGE: "triage",
  AGENTFACTORY_RUN: "shop-7-abcd",
  AGENTFACTORY_TICKET: JSON.stringify(ticket),
  GITHUB_TOKEN: "ghs_abcdefghijklmnopqrstuvwxyz0123456789",
  ANTHROPIC_API_KEY: "sk-ant-xxxxxxxxxxxxxxxx",
  ...over,
});

describe("loadConfig", () => {
  it("applies per-stage defaults (a cheaper triage model is configuration)", () => {
    const c = loadConfig(env());
    expect(c).toMatchObject({
      stage: "triage",
      model: "claude-haiku-4-5",
      maxTurns: 8,
      attempt: 1,
      workspace: "/workspace",
    });
    expect(loadConfig(env({ AGENTFACTORY_STAGE: "write" })).model).toBe("claude-sonnet-4-6");
    expect(loadConfig(env({ AGENTFACTORY_MODEL: "anthropic/claude-opus-4.6" })).model).toBe(
      "anthropic/claude-opus-4.6",
    );
  });
  it("parses context, caps and price overrides", () => {
    const c = loadConfig(
      env({
        AGENTFACTORY_CONTEXT: JSON.stringify({ triageSpec: "plan", round: 2 }),
        AGENTFACTORY_BUDGET_USD: "0.75",
        AGENTFACTORY_MAX_TURNS: "12",
        AGENTFACTORY_PRICES: '{"my-model":{"input":1,"output":2}}',
        GITHUB_API_URL: "http://127.0.0.1:9/api/v3/",
      }),
    );
    expect(c.context).toEqual({ clarifications: [], triageSpec: "plan", round: 2 });
    expect(c.budgetUsd).toBe(0.75);
    expect(c.maxTurns).toBe(12);
    expect(c.prices["my-model"]).toEqual({ input: 1, output: 2 });
    expect(c.github.apiUrl).toBe("http://127.0.0.1:9/api/v3");
  });
  it("names the variable that is wrong", () => {
    expect(() => loadConfig(env({ AGENTFACTORY_TICKET: "{" }))).toThrow(/AGENTFACTORY_TICKET/);
    expect(() => loadConfig(env({ AGENTFACTORY_STAGE: "deploy" }))).toThrow(/AGENTFACTORY_STAGE/);
    expect(() => loadConfig(env({ AGENTFACTORY_BUDGET_USD: "-1" }))).toThrow(/AGENTFACTORY_BUDGET_USD/);
  });
  it("collects every secret value for redaction", () => {
    const c = loadConfig(env({ AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG", DB_PASSWORD: "hunter2hunter2" }));
    expect(c.secrets).toEqual(
      expect.arrayContaining([
        "ghs_abcdefghijklmnopqrstuvwxyz0123456789",
        "sk-ant-xxxxxxxxxxxxxxxx",
        "wJalrXUtnFEMI/K7MDENG",
        "hunter2hunter2",
      ]),
    );
  });
});

describe("secret names", () => {
  it.each([
    "GITHUB_TOKEN",
    "ANTHROPIC_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SESSION_TOKEN",
    "SLACK_WEBHOOK_SECRET",
    "DB_PASSWORD",
    "NPM_TOKEN",
    "GH_PRIVATE_KEY",
  ])("%s is secret", (name) => expect(isSecretName(name)).toBe(true));
  it.each(["PATH", "HOME", "AWS_REGION", "AGENTFACTORY_MAX_TOKENS", "LANG"])("%s is not", (name) =>
    expect(isSecretName(name)).toBe(false),
  );
  it("ignores short values", () => {
    expect(secretValues({ API_KEY: "abc", OTHER_TOKEN: "long-enough-value" })).toEqual(["long-enough-value"]);
  });
});

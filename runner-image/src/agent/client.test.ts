import { describe, expect, it } from "vitest";
import { createModelClient } from "./client.ts";

describe("createModelClient", () => {
  it.each([
    ["anthropic", { apiKey: "k", baseUrl: "http://127.0.0.1:1" }],
    ["bedrock", { awsRegion: "us-east-1", awsAccessKeyId: "AKIAIOSFODNN7EXAMPLE", awsSecretAccessKey: "secret" }],
    ["vertex", { vertexRegion: "us-east5", vertexProject: "p" }],
  ] as const)("builds a %s client without network", async (provider, extra) => {
    const client = await createModelClient({ provider, ...extra });
    expect(typeof client.create).toBe("function");
  });
});

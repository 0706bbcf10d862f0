import Anthropic from "@anthropic-ai/sdk";
import type { Message, MessageCreateParamsNonStreaming } from "@anthropic-ai/sdk/resources/messages";

/** The one call the loop makes; any provider's client fits. */
export interface ModelClient {
  create(params: MessageCreateParamsNonStreaming): Promise<Message>;
}

export interface ProviderConfig {
  provider: "anthropic" | "bedrock" | "vertex";
  apiKey?: string;
  authToken?: string;
  baseUrl?: string;
  awsRegion?: string;
  awsAccessKeyId?: string;
  awsSecretAccessKey?: string;
  awsSessionToken?: string;
  vertexRegion?: string;
  vertexProject?: string;
  timeoutMs?: number;
}

/**
 * Builds the client for the configured provider. `anthropic` covers any Anthropic-compatible base URL
 * (OpenRouter's `/api`, a LiteLLM or local gateway). The SDKs' own retries are off: the loop retries,
 * so attempts are counted and bounded in one place. Bedrock and Vertex are loaded only when chosen.
 */
export async function createModelClient(cfg: ProviderConfig): Promise<ModelClient> {
  const common = { maxRetries: 0, timeout: cfg.timeoutMs ?? 600_000 };
  if (cfg.provider === "bedrock") {
    const { default: AnthropicBedrock } = await import("@anthropic-ai/bedrock-sdk");
    const creds =
      cfg.awsAccessKeyId && cfg.awsSecretAccessKey
        ? {
            awsAccessKey: cfg.awsAccessKeyId,
            awsSecretKey: cfg.awsSecretAccessKey,
            awsSessionToken: cfg.awsSessionToken ?? null,
          }
        : {};
    type BedrockOptions = ConstructorParameters<typeof AnthropicBedrock>[0];
    const options = { ...common, awsRegion: cfg.awsRegion, ...creds, ...(cfg.baseUrl ? { baseURL: cfg.baseUrl } : {}) };
    const client = new AnthropicBedrock(options as unknown as BedrockOptions);
    return { create: (p) => client.messages.create(p) as Promise<Message> };
  }
  if (cfg.provider === "vertex") {
    const { default: AnthropicVertex } = await import("@anthropic-ai/vertex-sdk");
    // The Vertex client starts its Google credential lookup in the constructor and only awaits it in
    // a request; built eagerly, a missing credential is an unhandled rejection that kills the runner
    // before it can write a result. Built on first use, the lookup's failure is the request's error.
    let client: InstanceType<typeof AnthropicVertex> | undefined;
    return {
      create: (p) => {
        client ??= new AnthropicVertex({
          ...common,
          region: cfg.vertexRegion,
          projectId: cfg.vertexProject,
          ...(cfg.baseUrl ? { baseURL: cfg.baseUrl } : {}),
        });
        return client.messages.create(p) as Promise<Message>;
      },
    };
  }
  const client = new Anthropic({
    ...common,
    apiKey: cfg.apiKey ?? null,
    authToken: cfg.authToken ?? null,
    ...(cfg.baseUrl ? { baseURL: cfg.baseUrl } : {}),
  });
  return { create: (p) => client.messages.create(p) };
}

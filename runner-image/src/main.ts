import { createModelClient } from "./agent/client.ts";
import { isSecretName, loadConfig, type RunnerConfig } from "./config.ts";
import { Forge } from "./forge.ts";
import { hookCli } from "./hook-cli.ts";
import { createRedactor } from "./hooks/redact.ts";
import { createLogger } from "./log.ts";
import { writeResult } from "./result.ts";
import { createExecutor, startSandbox } from "./sandbox/server.ts";
import { unsealEnvironment } from "./seal.ts";
import type { StageDeps, StageOutput } from "./stages/common.ts";
import { remediate } from "./stages/remediate.ts";
import { review } from "./stages/review.ts";
import { triage } from "./stages/triage.ts";
import { write } from "./stages/write.ts";
import { terminationHandler } from "./terminate.ts";

const STAGES = { triage, write, review, remediate } as const;

/**
 * The runner's entrypoint: `node runner.mjs` runs the stage named by AGENTFACTORY_STAGE and writes
 * its result to the termination log; `node runner.mjs hook <gate>` is the standalone hook command;
 * `node runner.mjs sandbox` is the stage pod's sandbox container (src/sandbox/server.ts).
 */
async function main(): Promise<number> {
  if (process.argv[2] === "hook") return hookCli(process.argv.slice(3));
  if (process.argv[2] === "sandbox") return sandboxMain();
  // Files the runner writes into the shared workspace stay writable for the sandbox (the pod's fsGroup).
  process.umask(0o002);
  const env = unsealEnvironment();
  let config: RunnerConfig;
  try {
    config = loadConfig(env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2; // no valid result: the operator treats the pod as an infrastructure failure
  }
  if (config.provider !== "anthropic") exposeProviderEnv(env);
  const redact = createRedactor(config.secrets);
  const log = createLogger(
    { run: config.run, stage: config.stage, attempt: config.attempt, requestId: config.requestId },
    redact,
  );
  const started = Date.now();
  const termination = terminationHandler({
    terminationLog: config.terminationLog,
    stage: config.stage,
    model: config.model,
    started,
    redact,
    log,
    exit: (code) => process.exit(code),
  });
  process.once("SIGTERM", () => termination.onSignal("SIGTERM"));
  process.once("SIGINT", () => termination.onSignal("SIGINT"));
  let result: StageOutput;
  try {
    const deps: StageDeps = {
      config,
      client: await createModelClient({
        provider: config.provider,
        apiKey: config.anthropic.apiKey,
        authToken: config.anthropic.authToken,
        baseUrl: config.anthropic.baseUrl,
        awsRegion: config.anthropic.awsRegion,
        awsAccessKeyId: env.AWS_ACCESS_KEY_ID,
        awsSecretAccessKey: env.AWS_SECRET_ACCESS_KEY,
        awsSessionToken: env.AWS_SESSION_TOKEN,
        vertexRegion: config.anthropic.vertexRegion,
        vertexProject: config.anthropic.vertexProject,
      }),
      forge: new Forge({
        apiUrl: config.github.apiUrl,
        token: config.github.token,
        repo: config.ticket.repo,
        ...(config.github.botLogin ? { botLogin: config.github.botLogin } : {}),
        redact,
      }),
      redact,
      log,
      baseEnv: env,
      executor: createExecutor(config.sandboxSocket),
    };
    log("stage start", {
      model: config.model,
      provider: config.provider,
      budgetUsd: config.budgetUsd,
      maxTurns: config.maxTurns,
      sandbox: config.sandboxSocket ? "container" : "local",
    });
    result = await STAGES[config.stage](deps);
  } catch (err) {
    const message = redact(err instanceof Error ? err.message : String(err));
    log("stage error", { error: message });
    result = {
      stage: config.stage,
      outcome: "failed",
      model: config.model,
      summary: `runner error: ${message}`,
      durationMs: Date.now() - started,
    };
  }
  log("stage end", {
    outcome: result.outcome,
    costUsd: result.costUsd,
    turns: result.turns,
    summary: redact(String(result.summary ?? "")).slice(0, 300),
  });
  return termination.finish(() => writeResult(config.terminationLog, result, redact));
}

/**
 * The sandbox container: serves the runner's commands until the pod ends it (SIGTERM). It refuses to
 * start with a secret in its environment: the point of it is to hold none.
 */
async function sandboxMain(): Promise<number> {
  const socketPath = process.env.AGENTFACTORY_SANDBOX_SOCKET;
  const log = createLogger({ component: "sandbox" }, (s) => s);
  if (!socketPath) {
    process.stderr.write("sandbox: AGENTFACTORY_SANDBOX_SOCKET is not set\n");
    return 2;
  }
  const secrets = Object.keys(process.env).filter((k) => isSecretName(k) && process.env[k]);
  if (secrets.length) {
    process.stderr.write(`sandbox: refusing to start with secrets in the environment (${secrets.join(", ")})\n`);
    return 2;
  }
  const sandbox = await startSandbox({ socketPath, log });
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await sandbox.close();
  return 0;
}

/**
 * The Bedrock and Vertex SDKs find credentials through process.env (IRSA web identity, shared
 * credentials files, GOOGLE_APPLICATION_CREDENTIALS). Setting them in memory does not change the
 * process's /proc environment block, and tools and git get explicit allowlisted environments.
 */
function exposeProviderEnv(env: Record<string, string | undefined>): void {
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && /^(AWS_|GOOGLE_|CLOUD_ML_|ANTHROPIC_VERTEX_)/.test(key)) process.env[key] = value;
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`fatal: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
  },
);

/**
 * `make bench-redact`: how long redaction (core/redact.ts: the stage's own secrets in every encoding,
 * the gitleaks-derived pattern set, base64 decoding) takes per typical log line. The corpus is what
 * passes through it in a stage: the runner's JSON log lines, git and npm output, source lines of a diff,
 * prose of a PR body, and a few lines that do hold a secret. The last line is machine-readable.
 */
import { randomBytes } from "node:crypto";
import { createRedactor, REDACTED } from "../core/redact.ts";

const token = `ghs_${randomBytes(27).toString("base64url").replace(/[-_]/g, "A").slice(0, 36)}`;
const modelKey = `sk-ant-api03-${randomBytes(60).toString("base64url")}`;
const awsSecret = randomBytes(30).toString("base64").slice(0, 40);
const redact = createRedactor([token, modelKey, awsSecret, "a-webhook-secret-value"]);

const ordinary = [
  '{"time":"2026-01-02T03:04:05.678Z","level":"info","msg":"stage start","run":"calc-12-abcd1234","stage":"write","attempt":1,"requestId":"req-7f3a","model":"claude-sonnet-4-6","budgetUsd":2,"maxTurns":40}',
  '{"time":"2026-01-02T03:04:09.001Z","level":"info","msg":"tool","name":"Bash","durationMs":412,"exit":0,"run":"calc-12-abcd1234"}',
  '{"time":"2026-01-02T03:05:10.500Z","level":"info","msg":"draft PR","number":17,"reused":false,"changed":3}',
  "To http://127.0.0.1:40123/acme/calc.git",
  " * [new branch]      9e12922a0c3f8e7b0f4d2c6a1b5e8f7d3c2a1b0e -> agent/12-add-returns-the-wrong-result",
  "commit 87aabca4f1e2d3c4b5a69788796a5b4c3d2e1f00",
  "Author: AgentFactory <agentfactory@users.noreply.github.com>",
  "diff --git a/src/add.js b/src/add.js",
  "index 3f2a9c8..7d6b5a4 100644",
  "-  return a - b;",
  "+  return a + b;",
  "✔ adds two numbers (0.512ms)",
  "ℹ tests 1 | pass 1 | fail 0 | cancelled 0 | skipped 0 | todo 0 | duration_ms 61.2",
  "export function createRedactor(secrets: readonly string[]): Redactor {",
  "  const token = process.env.GITHUB_TOKEN ?? '';",
  "  const headers = { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' };",
  "import { randomUUID } from 'node:crypto'; const id = randomUUID(); // 0b4d6a2e-7c1f-4e8a-9d3b-5f6e7a8b9c0d",
  "Fixed add() to return the sum of its arguments; the existing test now passes and the CLI prints 5 for 2 + 3.",
  "| Write | 1 | `claude-sonnet-4-6` | $0.0421 | 5120 / 812 / 40960 / 2048 | 6 | 41.3s | Succeeded |",
  "npm warn deprecated inflight@1.0.6: This module is not supported, and leaks memory.",
  "added 212 packages, and audited 213 packages in 3s",
  '  "integrity": "sha512-VGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZw==",',
  "src/components/invoice/export/csv-writer.test.ts:42:7 lint/style/useConst",
];
const secret = [
  `remote: https://x-access-token:${token}@github.com/acme/calc.git`,
  `ANTHROPIC_API_KEY=${modelKey}`,
  `{"aws_secret_access_key": "${awsSecret}"}`,
  `Authorization: Basic ${Buffer.from(`x-access-token:${token}`).toString("base64")}`,
];
// A stage's log: mostly ordinary lines, one in twenty holding a secret.
const lines: string[] = [];
for (let i = 0; lines.length < 20_000; i++) {
  lines.push(i % 20 === 19 ? (secret[i % secret.length] as string) : (ordinary[i % ordinary.length] as string));
}

let leaked = 0;
for (const line of lines) {
  const out = redact(line);
  if (out.includes(token) || out.includes(modelKey) || out.includes(awsSecret)) leaked++;
}
let changedOrdinary = 0;
for (const line of ordinary) if (redact(line) !== line) changedOrdinary++;

const rounds = 5;
const times: number[] = [];
for (let r = 0; r < rounds; r++) {
  const start = process.hrtime.bigint();
  let sink = 0;
  for (const line of lines) sink += redact(line).length;
  const ns = Number(process.hrtime.bigint() - start);
  times.push(ns / lines.length / 1000);
  if (sink === 0) throw new Error("nothing redacted");
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)] as number;
const avgLen = Math.round(lines.reduce((n, l) => n + l.length, 0) / lines.length);
console.log(
  `lines: ${lines.length} (mean ${avgLen} chars), ${rounds} rounds; per line (µs): ${times.map((t) => t.toFixed(2)).join(" ")}`,
);
console.log(
  `secrets left after redaction: ${leaked}; ordinary lines changed: ${changedOrdinary} of ${ordinary.length}`,
);
console.log(`example: ${redact(secret[0] as string)} (marker ${REDACTED})`);
console.log(
  `result: us_per_line=${median.toFixed(2)} lines=${lines.length} leaked=${leaked} ordinary_changed=${changedOrdinary}`,
);
if (leaked > 0 || changedOrdinary > 0) process.exitCode = 1;

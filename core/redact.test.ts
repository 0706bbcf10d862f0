import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import {
  createRedactor,
  logRedaction,
  REDACTED,
  redactDeep,
  redactPatterns,
  redactText,
  secretForms,
} from "./redact.ts";
import { entropy, SECRET_RULES } from "./secret-patterns.ts";

/** Deterministic pseudo-random text over `alphabet` (no real secret is ever written down). */
function rnd(alphabet: string, n: number, seed = n): string {
  let x = seed * 2654435761 + 12345;
  let out = "";
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out += alphabet[x % alphabet.length];
  }
  return out;
}
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LOWER = "abcdefghijklmnopqrstuvwxyz0123456789";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const HEX = "0123456789abcdef";
const B64 = `${ALNUM}+/`;
const WORD = `${ALNUM}_-`;

const token = "ghs_16C7e42F292c6912E7710c838347Ae178B4a";
const apiKey = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345";

const PEM = `-----BEGIN OPENSSH PRIVATE KEY-----\n${rnd(B64, 70)}\n${rnd(B64, 70, 3)}\n-----END OPENSSH PRIVATE KEY-----`;
const PGP = `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF${rnd(B64, 64)}\n=${rnd(B64, 4)}\n-----END PGP PRIVATE KEY BLOCK-----`;
const JWT = `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.${rnd(WORD, 43)}`;

/** One sample per rule, matched by that rule alone (so a broader rule cannot hide a broken one). */
const SAMPLES: Record<string, string> = {
  "private-key": PEM,
  "github-app-token/pat/oauth/refresh": `ghp_${rnd(ALNUM, 36)}`,
  "github-fine-grained-pat": `github_pat_11${rnd(ALNUM, 20)}_${rnd(ALNUM, 59)}`,
  "gitlab-pat/deploy/feed/mail/agent/oauth/ptt/runner/scim/ffct": `glpat-${rnd(WORD, 20)}`,
  "gitlab-cicd-job-token": `glcbt-64_${rnd(WORD, 20)}`,
  "gitlab-rrt": `GR1348941${rnd(WORD, 20)}`,
  "gitlab-session-cookie": `_gitlab_session=${rnd(LOWER, 32)}`,
  "slack-tokens": `xoxb-1234567890123-1234567890123-${rnd(ALNUM, 24)}`,
  "slack-app-token": `xapp-1-A0${rnd(UPPER, 9)}-1234567890123-${rnd(HEX, 64)}`,
  "slack-webhook-url": `https://hooks.slack.com/services/T${rnd(UPPER, 8)}/B${rnd(UPPER, 8)}/${rnd(ALNUM, 24)}`,
  "anthropic-api-key/admin-api-key": `sk-ant-admin01-${rnd(WORD, 93)}AA`,
  "openai-api-key": `sk-${rnd(ALNUM, 20)}T3BlbkFJ${rnd(ALNUM, 20)}`,
  "openai-project-key (own)": `sk-proj-${rnd(WORD, 48)}`,
  "openrouter-api-key (own)": `sk-or-v1-${rnd(HEX, 64)}`,
  "openai-legacy-key (own)": `sk-${rnd(ALNUM, 48)}`,
  "perplexity-api-key": `pplx-${rnd(ALNUM, 48)}`,
  "huggingface-access-token": `hf_${rnd("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 34)}`,
  "huggingface-organization-api-token": `api_org_${rnd("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 34)}`,
  "aws-access-token": `AKIA${rnd("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)}`,
  "aws-secret-access-key (own)": `aws_secret_access_key = ${rnd(B64, 40)}`,
  "gcp-api-key": `AIza${rnd(WORD, 35)}`,
  "google-oauth-access-token (own)": `ya29.a0${rnd(WORD, 60)}`,
  "google-oauth-refresh-token (own)": `1//0${rnd(WORD, 60)}`,
  "azure-ad-client-secret": ` abc8Q~${rnd(ALNUM, 34)} `,
  "alibaba-access-key-id": `LTAI${rnd(ALNUM, 20)}`,
  "digitalocean-access/pat/refresh-token": `dop_v1_${rnd(HEX, 64)}`,
  "heroku-api-key-v2": `HRKU-AA${rnd(WORD, 58)}`,
  "flyio-access-token": `fo1_${rnd(WORD, 43)}`,
  "cloudflare-origin-ca-key": `v1.0-${rnd(HEX, 24)}-${rnd(HEX, 146)}`,
  "openshift-user-token": `sha256~${rnd(WORD, 43)}`,
  "vault-service/batch-token": `hvs.${rnd(WORD, 95)}`,
  "scalingo-api-token": `tk-us-${rnd(WORD, 48)}`,
  "npm-access-token": `npm_${rnd(ALNUM, 36)}`,
  "pypi-upload-token": `pypi-AgEIcHlwaS5vcmc${rnd(WORD, 70)}`,
  "rubygems-api-token": `rubygems_${rnd(HEX, 48)}`,
  "clojars-api-token": `CLOJARS_${rnd(LOWER, 60)}`,
  "dockerhub-pat (own)": `dckr_pat_${rnd(WORD, 27)}`,
  "artifactory-api-key": `AKCp${rnd(ALNUM, 69)}`,
  "artifactory-reference-token": `cmVmd${rnd(ALNUM, 59)}`,
  "databricks-api-token": `dapi${rnd(HEX, 32)}`,
  "doppler-api-token": `dp.pt.${rnd(ALNUM, 43)}`,
  "dynatrace-api-token": `dt0c01.${rnd(UPPER, 24)}.${rnd(ALNUM, 64)}`,
  "grafana-cloud-api-token": `glc_${rnd(ALNUM, 40)}`,
  "grafana-service-account-token": `glsa_${rnd(ALNUM, 32)}_${rnd(HEX, 8)}`,
  "grafana-api-key": `eyJrIjoi${rnd(ALNUM, 80)}`,
  "sentry-org/user-token": `sntryu_${rnd(HEX, 64)}`,
  "linear-api-key": `lin_api_${rnd(ALNUM, 40)}`,
  "postman-api-token": `PMAK-${rnd(HEX, 24)}-${rnd(HEX, 34)}`,
  "pulumi-api-token": `pul-${rnd(HEX, 40)}`,
  "prefect-api-token": `pnu_${rnd(ALNUM, 36)}`,
  "readme-api-token": `rdme_${rnd(LOWER, 70)}`,
  "planetscale-api/oauth-token/password": `pscale_tkn_${rnd(WORD, 43)}`,
  "notion-api-token": `ntn_${rnd("0123456789", 11)}${rnd(ALNUM, 35)}`,
  "infracost-api-token": `ico-${rnd(ALNUM, 32)}`,
  "frameio-api-token": `fio-u-${rnd(WORD, 64)}`,
  "octopus-deploy-api-key": `API-${rnd(UPPER, 26)}`,
  "atlassian-api-token": `ATATT3${rnd(WORD, 186)}`,
  "1password-service-account-token": `ops_eyJ${rnd(B64, 260)}`,
  "1password-secret-key": `A3-${rnd(UPPER, 6)}-${rnd(UPPER, 11)}-${rnd(UPPER, 5)}-${rnd(UPPER, 5)}-${rnd(UPPER, 5)}`,
  "age-secret-key": `AGE-SECRET-KEY-1${rnd("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)}`,
  "clickhouse-cloud-api-secret-key": `4b1d${rnd(ALNUM, 38)}`,
  "intra42-client-secret": `s-s4t2ud-${rnd(HEX, 64)}`,
  "settlemint-tokens": `sm_pat_${rnd(ALNUM, 16)}`,
  "stripe-access-token": `sk_live_${rnd(ALNUM, 24)}`,
  "stripe-webhook-secret (own)": `whsec_${rnd(ALNUM, 32)}`,
  "square-access-token": `sq0atp-${rnd(WORD, 22)}`,
  "shopify-tokens": `shpat_${rnd(HEX, 32)}`,
  "shippo-api-token": `shippo_live_${rnd(HEX, 40)}`,
  "duffel-api-token": `duffel_test_${rnd(WORD, 43)}`,
  "easypost-api-token": `EZAK${rnd(ALNUM, 54)}`,
  "flutterwave-keys": `FLWSECK_TEST-${rnd("abcdefgh0123456789", 32)}-X`,
  "adobe-client-secret": `p8e-${rnd(ALNUM, 32)}`,
  "facebook-page-access-token": `EAAM${rnd(ALNUM, 120)}`,
  "sendgrid-api-token": `SG.${rnd(WORD, 22)}.${rnd(WORD, 43)}`,
  "sendinblue-api-token": `xkeysib-${rnd(HEX, 64)}-${rnd(ALNUM, 16)}`,
  "twilio-api-key": `SK${rnd(HEX, 32)}`,
  "mailchimp-api-key": `${rnd(HEX, 32)}-us14`,
  "telegram-bot-api-token (own shape)": `123456789:AA${rnd(WORD, 33)}`,
  "microsoft-teams-webhook": `https://acme.webhook.office.com/webhookb2/${rnd(HEX, 8)}-${rnd(HEX, 4)}-${rnd(HEX, 4)}-${rnd(HEX, 4)}-${rnd(HEX, 12)}@${rnd(HEX, 8)}-${rnd(HEX, 4)}-${rnd(HEX, 4)}-${rnd(HEX, 4)}-${rnd(HEX, 12)}/IncomingWebhook/${rnd(HEX, 32)}/${rnd(HEX, 8)}-${rnd(HEX, 4)}-${rnd(HEX, 4)}-${rnd(HEX, 4)}-${rnd(HEX, 12)}`,
  jwt: JWT,
  "url-credentials (own)": `postgres://app:${rnd(ALNUM, 20)}@db.internal:5432/app`,
  "authorization-header (own)": `Authorization: Bearer ${rnd(WORD, 40)}`,
  "bearer-token (own)": `-H "x: Bearer ${rnd(WORD, 40)}"`,
  "curl-auth-user": `curl -sS -u deploy:${rnd(ALNUM, 20)} https://example.test/api`,
  "generic-assignment (after gitleaks generic-api-key)": `CLIENT_SECRET="${rnd(ALNUM, 32)}"`,
};

/** The part of a sample that is the secret (what must not survive). */
const secretPart = (sample: string) => {
  const m = /[:=] ?"?([^\s"@]{12,})/.exec(sample);
  return m?.[1] && !sample.startsWith("http") && !sample.includes("-----") ? m[1] : sample.trim();
};

describe("the secret-pattern set", () => {
  it("has a sample for every rule, and each rule alone finds its sample", () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(SECRET_RULES.map((r) => r.id).sort());
    for (const rule of SECRET_RULES) {
      const sample = SAMPLES[rule.id] as string;
      expect(
        rule.keywords.some((k) => sample.toLowerCase().includes(k)),
        `${rule.id}: a keyword`,
      ).toBe(true);
      rule.regex.lastIndex = 0;
      const m = rule.regex.exec(sample);
      rule.regex.lastIndex = 0;
      expect(m, `${rule.id} matches its sample`).not.toBeNull();
      if (rule.check) expect(rule.check(m?.groups?.s ?? "", m?.groups?.keep ?? ""), rule.id).toBe(true);
    }
  });

  it.each(Object.entries(SAMPLES))("redacts %s", (_id, sample) => {
    const out = redactText(`before ${sample} after`);
    expect(out).toContain(REDACTED);
    expect(out).not.toContain(secretPart(sample));
    expect(out.startsWith("before ")).toBe(true);
    expect(out.endsWith(" after")).toBe(true);
  });

  it("compiles every rule once, globally", () => {
    for (const rule of SECRET_RULES) expect(rule.regex.flags).toContain("g");
    expect(SECRET_RULES.length).toBeGreaterThan(80);
  });
});

describe("the formats issue 14 found missing", () => {
  const cases: [string, string, string][] = [
    ["Slack app-level token", `xapp-1-A0${rnd(UPPER, 9)}-1234567890123-${rnd(HEX, 64)}`, ""],
    ["Slack refresh token", `xoxe-1-${rnd(UPPER, 146)}`, ""],
    ["Slack config token", `xoxe.xoxp-1-${rnd(UPPER, 164)}`, ""],
    ["npm token", `npm_${rnd(ALNUM, 36)}`, ""],
    ["PyPI token", `pypi-AgEIcHlwaS5vcmcCJDg${rnd(WORD, 70)}`, ""],
    ["GitLab PAT", `glpat-${rnd(WORD, 20)}`, ""],
    ["Google OAuth token", `ya29.a0AfB_${rnd(WORD, 120)}`, ""],
    ["OpenAI project key", `sk-proj-${rnd(WORD, 74)}T3BlbkFJ${rnd(WORD, 74)}`, ""],
    ["Stripe live key", `sk_live_${rnd(ALNUM, 99)}`, ""],
    ["glued GitHub token", `GH_TOKEN_ghs_${rnd(ALNUM, 36)}`, "GH_TOKEN_"],
    ["glued npm token", `MY_NPM_npm_${rnd(ALNUM, 36)}`, "MY_NPM_"],
    ["glued Anthropic key", `KEY_sk-ant-api03-${rnd(WORD, 95)}`, "KEY_"],
  ];
  it.each(cases)("%s", (_name, secret, kept) => {
    const out = redactText(`x ${secret}.`);
    expect(out).toBe(`x ${kept}${REDACTED}.`);
  });

  it("AWS secret keys in JSON, YAML, INI and the environment, by name", () => {
    const key = rnd(B64, 40, 7);
    for (const text of [
      `{"aws_secret_access_key": "${key}"}`,
      `{"Credentials":{"AccessKeyId":"ASIA${rnd("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)}","SecretAccessKey":"${key}","SessionToken":"${rnd(B64, 300)}"}}`,
      `aws_secret_access_key: ${key}`,
      `aws_secret_access_key=${key}`,
      `AWS_SECRET_ACCESS_KEY="${key}"`,
      `{\\"SecretAccessKey\\":\\"${key}\\"}`,
    ]) {
      const out = redactText(text);
      expect(out, text).not.toContain(key);
      expect(out).not.toContain("ASIA");
    }
  });

  it("credentials in URLs, keeping scheme and host", () => {
    expect(redactText("git clone https://alice:s3cr3t-Pass@git.example.com/r.git")).toBe(
      `git clone https://${REDACTED}@git.example.com/r.git`,
    );
    expect(redactText(`remote: https://x-access-token:${token}@github.com/acme/calc.git`)).toBe(
      `remote: https://${REDACTED}@github.com/acme/calc.git`,
    );
    expect(redactText("REDIS_URL=redis://default:pa55w0rd@cache:6379/0")).toBe(
      `REDIS_URL=redis://${REDACTED}@cache:6379/0`,
    );
  });

  it("PGP and other private key blocks, also cut short and inside JSON strings", () => {
    expect(redactText(`key:\n${PGP}\n`)).toBe(`key:\n${REDACTED}\n`);
    expect(redactText(`a ${PEM} b`)).toBe(`a ${REDACTED} b`);
    const cut = PEM.slice(0, 90);
    expect(redactText(`${cut}`)).toBe(REDACTED);
    const json = JSON.stringify({ key: PEM.slice(0, 120), next: "kept" });
    const out = redactText(json);
    expect(JSON.parse(out)).toEqual({ key: REDACTED, next: "kept" });
  });

  it("base64 of a token (standard, URL-safe, glued, in a Basic header, of a whole .env)", () => {
    const gh = `ghp_${rnd(ALNUM, 36, 5)}`;
    const std = Buffer.from(gh).toString("base64");
    const url = Buffer.from(`npm_${rnd(ALNUM, 36, 9)}`).toString("base64url");
    const env = Buffer.from(`PORT=8080\nSTRIPE_KEY=sk_live_${rnd(ALNUM, 24)}\n`).toString("base64");
    for (const [text, hidden] of [
      [`token: ${std}`, std],
      [`u=${url}`, url],
      [`Authorization: Basic ${Buffer.from(`x-access-token:${gh}`).toString("base64")}`, gh],
      [`ENV_${env}`, env],
      [`data: ${env}`, env],
    ] as const) {
      const out = redactText(text);
      expect(out, text).toContain(REDACTED);
      expect(out).not.toContain(hidden);
    }
  });

  it("secret-named assignments, with the name kept", () => {
    const value = rnd(ALNUM, 32, 11);
    for (const [text, kept] of [
      [`DATABASE_PASSWORD=${value}`, "DATABASE_PASSWORD="],
      [`"client_secret": "${value}"`, `"client_secret": "`],
      [`api_key: '${value}'`, "api_key: '"],
      [`auth_token => ${value}`, "auth_token => "],
      [`password = "Hunter2Hunter2x"`, `password = "`],
      [`export SERVICE_KEY=${value}`, "export SERVICE_KEY="],
    ] as const) {
      expect(redactText(text), text).toBe(`${kept}${REDACTED}${text.slice(kept.length).replace(/^[^"']+/, "")}`);
    }
  });
});

describe("near misses: ordinary code and logs stay as they are", () => {
  it.each([
    ["a git SHA", "commit 9e12922a0c3f8e7b0f4d2c6a1b5e8f7d3c2a1b0e (HEAD -> agent/12-fix)"],
    ["a sha256 digest", `sha256:4b1d${rnd(HEX, 60)}`],
    ["an image digest", `ghcr.io/acme/app@sha256:${rnd(HEX, 64)}`],
    ["UUIDs", "run 0b4d6a2e-7c1f-4e8a-9d3b-5f6e7a8b9c0d, request 123e4567-e89b-12d3-a456-426614174000"],
    [
      "a UUID as an id",
      '{"id": "0b4d6a2e-7c1f-4e8a-9d3b-5f6e7a8b9c0d", "requestId": "123e4567-e89b-12d3-a456-426614174000"}',
    ],
    [
      "base64 of ordinary text",
      Buffer.from("The quick brown fox jumps over the lazy dog, twice over.").toString("base64"),
    ],
    ["an npm integrity hash", `"integrity": "sha512-${Buffer.from(rnd(ALNUM, 48)).toString("base64")}"`],
    ["code reading a token", "const token = process.env.GITHUB_TOKEN ?? '';"],
    ["the shell's working directories", "PWD=/workspace/repo\nOLDPWD=/home/runner/work/tmp-3f9a2c8e7d6b"],
    ["a type annotation", "function login(user: string, password: string): Promise<Token> {"],
    ["settings named like secrets", "maxTokens: 8192, tokenUrl: https://auth.example.com/token, tokens: 1200"],
    ["database and cache keys", 'cacheKey: "v1-deps-3f2a9c8e7d6b5a4f", primary_key = "user_id_9f8e7d"'],
    ["a placeholder", `password: "changeme", api_key: "xxxxxxxxxxxxxxxx", token: "$\{TOKEN}"`],
    ["a URL with a port", "listening on http://localhost:8080/x@y and git@github.com:acme/calc.git"],
    ["prose", "Use a Bearer token in the header; the secret key lives in the vault. xoxo-hugs"],
    [
      "a runner log line",
      '{"time":"2026-01-02T03:04:05.678Z","level":"info","msg":"stage start","run":"calc-12-abcd1234","stage":"write","maxTurns":40}',
    ],
    [
      "a diff",
      "diff --git a/src/add.js b/src/add.js\nindex 3f2a9c8..7d6b5a4 100644\n-  return a - b;\n+  return a + b;",
    ],
    [
      "the stats table",
      "| Write | 1 | `claude-sonnet-4-6` | $0.0421 | 5120 / 812 / 40960 / 2048 | 6 | 41.3s | Succeeded |",
    ],
    ["a long path", "src/components/invoice/export/csv-writer/internationalization.test.ts"],
    ["a short value", "token=abc123"],
  ])("%s", (_name, text) => {
    expect(redactText(text)).toBe(text);
  });

  it("is idempotent", () => {
    const once = redactText(`a ${SAMPLES.jwt} b ${SAMPLES["npm-access-token"]}`);
    expect(redactText(once)).toBe(once);
  });

  it("entropy: random text high, repetitive text low", () => {
    expect(entropy(rnd(ALNUM, 40))).toBeGreaterThan(4);
    expect(entropy("aaaaaaaabbbb")).toBeLessThan(1);
  });
});

describe("the values the caller holds", () => {
  const redact = createRedactor([token, apiKey, "plain-secret-value"]);

  it("removes them exactly", () => {
    expect(redact(`token=${token} key=${apiKey}`)).toBe(`token=${REDACTED} key=${REDACTED}`);
    expect(redact("x plain-secret-value y")).toBe(`x ${REDACTED} y`);
  });

  it("removes their URL-encoded, JSON-escaped and base64 forms", () => {
    const odd = 'p@ss/w+rd="quoted"\nline';
    const r = createRedactor([odd]);
    expect(r(`u=${encodeURIComponent(odd)}`)).toBe(`u=${REDACTED}`);
    expect(r(JSON.stringify({ v: odd }))).toBe(`{"v":"${REDACTED}"}`);
    expect(redact(Buffer.from("plain-secret-value").toString("base64"))).toBe(REDACTED);
    expect(redact(Buffer.from("plain-secret-value").toString("base64url"))).toBe(REDACTED);
  });

  it("finds them inside longer base64 text at every byte offset", () => {
    for (const prefix of ["", "a", "ab", "abc", "user:"]) {
      for (const suffix of ["", "!", "!!", "\n"]) {
        const blob = Buffer.from(`${prefix}plain-secret-value${suffix}`).toString("base64");
        const out = redact(`data ${blob}`);
        expect(out, `${prefix}|${suffix}`).toContain(REDACTED);
        expect(Buffer.from(out.slice(5).replace(REDACTED, ""), "base64").toString()).not.toContain("secret");
      }
    }
  });

  it("has forms only of useful length, and the long lines of multi-line secrets", () => {
    const forms = secretForms(PEM);
    expect(forms).toContain(PEM.split("\n")[1]);
    expect(forms.every((f) => f.length >= 8)).toBe(true);
    expect(createRedactor([PEM])(`line: ${PEM.split("\n")[2]}`)).toBe(`line: ${REDACTED}`);
  });

  it("ignores short values, and leaves ordinary text alone", () => {
    const r = createRedactor(["abc"]);
    expect(r("abc def: npm test passed (3 tests)")).toBe("abc def: npm test passed (3 tests)");
  });

  it("redacts nested values and keys", () => {
    expect(redactDeep({ a: [token], b: { c: `x${apiKey}` }, [token]: 1, n: 1 }, redact)).toEqual({
      a: [REDACTED],
      b: { c: `x${REDACTED}` },
      [REDACTED]: 1,
      n: 1,
    });
  });

  it("patterns alone do not know the caller's values", () => {
    expect(redactPatterns("x plain-secret-value y")).toBe("x plain-secret-value y");
  });
});

describe("logRedaction (pino)", () => {
  it("redacts message, fields, bindings and error stacks, keeping valid JSON lines", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const key = `sk-ant-api03-${rnd(WORD, 60)}`;
    const log = pino({ level: "info", ...logRedaction(createRedactor([key]), ["config.DISPATCH_TOKEN"]) }, sink).child({
      url: `https://bot:${rnd(ALNUM, 20)}@example.test`,
    });
    log.info({ config: { DISPATCH_TOKEN: "short-but-censored", model: key } }, `calling with ${key}`);
    log.error({ err: new Error(`failed: Authorization: Bearer ${rnd(WORD, 40)}`) }, "boom");
    log.warn({ token: "anything" }, `npm ${SAMPLES["npm-access-token"]}`);
    const text = lines.join("");
    expect(text).not.toContain(key);
    expect(text).not.toContain("short-but-censored");
    expect(text).not.toContain(SAMPLES["npm-access-token"]);
    expect(text).not.toMatch(/Bearer [A-Za-z]/);
    expect(text).not.toMatch(/bot:[A-Za-z0-9]/);
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed[0].msg).toBe(`calling with ${REDACTED}`);
    expect(parsed[0].config.DISPATCH_TOKEN).toBe("[redacted]");
    expect(parsed[1].err.stack).toContain(`Bearer ${REDACTED}`);
    expect(parsed[2].token).toBe("[redacted]");
  });
});

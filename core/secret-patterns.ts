/**
 * The secret-pattern set every text that leaves a runner pod (and the operator's and gateway's logs and
 * messages) is redacted with.
 *
 * Derived from gitleaks' default rules: `config/gitleaks.toml` of gitleaks/gitleaks (MIT License,
 * Copyright (c) 2019 Zachary Rice), as at commit 009e025ad4106ab333aa0b9dc4f2a884390d134c (v8 series,
 * 2025). Rule ids are gitleaks' where a rule is derived from one; ids marked `(own)` are not in gitleaks.
 * Changes made on purpose, because redaction must not miss what detection may:
 * - gitleaks' `\b` before a token prefix becomes "no letter or digit before it", so a token glued to an
 *   identifier (`TOKEN_ghs_…`, `X_npm_…`) is still found; where gitleaks has no boundary (GitHub, GitLab,
 *   Slack…) there is none here either. The trailing delimiter gitleaks requires
 *   (``[\x60'"\s;]|\\[nr]|$``) is dropped: a token followed by `.`, `)` or `,` in prose is still a token.
 * - Distinctive prefixes take any length from gitleaks' minimum up (`npm_` + 36 or more); weak prefixes
 *   (`SK`, `API-`, `4b1d`, hex bodies) keep gitleaks' exact length and must end there, so digests and
 *   identifiers that merely start alike are left alone.
 * - No entropy gates or example allowlists on prefixed tokens (`AKIA…EXAMPLE` is redacted too).
 * - gitleaks' keyword-in-context rules (`<vendor>_key = …`, ~100 vendors) are folded into one
 *   `generic-assignment` rule with gitleaks' entropy idea and allowlist spirit, keyed on secret-like names.
 * - Added `(own)`: Google OAuth `ya29.`/`1//` tokens, OpenAI `sk-proj-` keys of any length and legacy
 *   `sk-` keys, OpenRouter, Docker Hub, Stripe webhook secrets, Slack `xox?-`/`xapp-` of any shape, AWS
 *   secret keys by name (JSON, YAML, env, INI), credentials in URLs (`scheme://user:pass@`),
 *   Authorization/Bearer values, truncated private-key blocks.
 *
 * Every rule is a `RegExp` compiled once, here. A rule runs on a text only when one of its lower-case
 * `keywords` occurs in it (as in gitleaks), which keeps a typical log line at a few microseconds.
 * Named group `keep` (when present) stays in the output; the rest of the match is the secret.
 */

export interface SecretRule {
  id: string;
  /** Lower-case; the rule runs only when the lower-cased text contains one of them. */
  keywords: readonly string[];
  /** Global; `(?<keep>…)` is kept, the rest of the match (group `s`) is redacted. */
  regex: RegExp;
  /** When given and false for the secret part, the match is left as it is. */
  check?: (secret: string, keep: string) => boolean;
}

/** No letter or digit right before: a token glued to an identifier by `_` or `-` still matches. */
const B = "(?<![A-Za-z0-9])";
/** No letter or digit right after. */
const E = "(?![A-Za-z0-9])";

interface RuleSpec {
  id: string;
  keywords: string[];
  /** Source; wrapped as `(?<s>…)` unless it declares `(?<keep>…)(?<s>…)` itself. */
  re: string;
  flags?: string;
  check?: SecretRule["check"];
}

/** Shannon entropy in bits per character. */
export function entropy(text: string): number {
  const counts = new Map<string, number>();
  for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / text.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

// --- generic assignment: `<secret-like name> = <value>` --------------------------------------------

/** Words of a name that hold no secret: identifiers, sizes, settings (`tokenUrl`, `TOKEN_FILE`, `maxTokens`). */
const NOT_SECRET_WORDS = new Set(
  "public publishable id ids name names url uri endpoint file path dir length len size type count usage max min limit ttl expiry expires expiration header prefix pattern regex kind tokens tokenizer keyboard keyword keywords keys author monkey turkey hotkey keyring keychain field param placeholder format version hint label".split(
    " ",
  ),
);
/** `<word>_key` that names a database, cache or map key, not a credential. */
const NOT_SECRET_KEYS = new Set(
  "primary foreign sort partition hash range cache idempotency dedup row map object bucket unique composite lookup group list dict translation i18n react".split(
    " ",
  ),
);
const PASSWORD_NAME = /passw|pwd/i;
/** Values that are code or placeholders, not secrets: words, member access (`process.env.X`), numbers, `xxxx`. */
const NOT_SECRET_VALUE = [
  /^[A-Za-z_.$-]+$/,
  /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$/,
  /^\d+(?:\.\d+)?[a-z]{0,3}$/i,
  /^(.)\1+$/,
  /^(?:true|false|null|nil|none|undefined|changeme|example|redacted)$/i,
];

/** The words of an identifier: `maxTokens` → max, tokens; `GITHUB_TOKEN_FILE` → github, token, file. */
function words(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .toLowerCase()
    .split(/[\s_.-]+/)
    .filter(Boolean);
}

/** Names that only look like a password's: the shell's working directories. */
const NOT_SECRET_NAMES = new Set(["PWD", "OLDPWD"]);

function secretValue(value: string, keep: string): boolean {
  const name = /^[A-Za-z0-9_.-]*/.exec(keep)?.[0] ?? "";
  if (NOT_SECRET_NAMES.has(name)) return false;
  const w = words(name);
  if (w.some((x) => NOT_SECRET_WORDS.has(x))) return false;
  const key = w.lastIndexOf("key");
  if (key > 0 && NOT_SECRET_KEYS.has(w[key - 1] ?? "")) return false;
  if (NOT_SECRET_VALUE.some((re) => re.test(value))) return false;
  return entropy(value) >= (PASSWORD_NAME.test(name) ? 2.5 : 3);
}

const SECRET_NAME =
  "[A-Za-z0-9_.-]{0,40}?(?:secret|token|passw(?:or)?d|pwd|credentials?|creds|api[_.-]?key|apikey|access[_.-]?key|private[_.-]?key|[_.-]key)[A-Za-z0-9_.-]{0,20}";
/** The operator between name and value, with quotes, JSON-escaped quotes (`\\"`) and an auth scheme. */
const ASSIGN = "\\\\?[\"']?[ \\t]{0,3}(?:=|:=|:|=>|\\?=)[ \\t]{0,3}(?:\\\\?[\"'\\x60]|(?:Bearer|Basic|token)[ \\t]+)?";

// --- the rules --------------------------------------------------------------------------------------

const SPECS: RuleSpec[] = [
  // Private keys first: a block holds many token-like lines. A block cut short (no END) is redacted as far
  // as its body goes (base64, headers, escaped newlines), so a JSON string around it stays valid.
  {
    id: "private-key",
    keywords: ["-----begin"],
    re: "-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----(?:[\\s\\S]*?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|(?:[A-Za-z0-9+/=\\s:,.-]|\\\\[nr])*)",
    flags: "i",
  },
  // GitHub (no boundary in gitleaks).
  {
    id: "github-app-token/pat/oauth/refresh",
    keywords: ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
    re: "gh[pousr]_[0-9A-Za-z]{20,}",
  },
  { id: "github-fine-grained-pat", keywords: ["github_pat_"], re: "github_pat_\\w{22,}" },
  // GitLab.
  {
    id: "gitlab-pat/deploy/feed/mail/agent/oauth/ptt/runner/scim/ffct",
    keywords: ["glpat-", "gldt-", "glft-", "glimt-", "glagent-", "gloas-", "glptt-", "glrt-", "glsoat-", "glffct-"],
    re: "gl(?:pat|dt|ft|imt|agent|oas|ptt|rt|soat|ffct)-[\\w-]{20,}(?:\\.[0-9a-z]{9}\\b)?",
  },
  { id: "gitlab-cicd-job-token", keywords: ["glcbt-"], re: "glcbt-[0-9a-zA-Z]{1,5}_[\\w-]{20,}" },
  { id: "gitlab-rrt", keywords: ["gr1348941"], re: "GR1348941[\\w-]{20,}" },
  { id: "gitlab-session-cookie", keywords: ["_gitlab_session="], re: "(?<keep>_gitlab_session=)(?<s>[0-9a-z]{32,})" },
  // Slack: every `xox?-` and `xapp-` shape (gitleaks has one rule per shape).
  { id: "slack-tokens", keywords: ["xox"], re: "xox[a-z](?:\\.xox[a-z])?-(?=[A-Za-z-]*\\d)[A-Za-z0-9-]{10,}" },
  { id: "slack-app-token", keywords: ["xapp-"], re: "xapp-\\d-[A-Za-z0-9-]{10,}", flags: "i" },
  {
    id: "slack-webhook-url",
    keywords: ["hooks.slack.com"],
    re: "(?:https?://)?hooks\\.slack\\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{20,}",
  },
  // Model providers.
  { id: "anthropic-api-key/admin-api-key", keywords: ["sk-ant-"], re: `${B}sk-ant-[\\w-]{16,}` },
  {
    id: "openai-api-key",
    keywords: ["t3blbkfj"],
    re: `${B}sk-(?:(?:proj|svcacct|admin)-)?[\\w-]{20,}T3BlbkFJ[\\w-]{20,}`,
  },
  {
    id: "openai-project-key (own)",
    keywords: ["sk-proj-", "sk-svcacct-", "sk-admin-"],
    re: `${B}sk-(?:proj|svcacct|admin)-[\\w-]{20,}`,
  },
  { id: "openrouter-api-key (own)", keywords: ["sk-or-"], re: `${B}sk-or-[\\w-]{16,}` },
  { id: "openai-legacy-key (own)", keywords: ["sk-"], re: `${B}sk-[A-Za-z0-9]{32,}${E}` },
  { id: "perplexity-api-key", keywords: ["pplx-"], re: `${B}pplx-[a-zA-Z0-9]{48,}` },
  { id: "huggingface-access-token", keywords: ["hf_"], re: `${B}hf_[A-Za-z]{34}${E}` },
  { id: "huggingface-organization-api-token", keywords: ["api_org_"], re: `${B}api_org_[A-Za-z]{34}${E}` },
  // Cloud providers.
  {
    id: "aws-access-token",
    keywords: ["a3t", "akia", "asia", "abia", "acca"],
    re: `${B}(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}${E}`,
  },
  {
    id: "aws-secret-access-key (own)",
    keywords: ["secret"],
    re: "(?<keep>(?:aws)?[_.-]?secret[_.-]?(?:access)?[_.-]?key\\\\?[\"']?[ \\t]{0,3}[:=][ \\t]{0,3}\\\\?[\"']?)(?<s>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
    flags: "i",
  },
  { id: "gcp-api-key", keywords: ["aiza"], re: `${B}AIza[\\w-]{35}` },
  { id: "google-oauth-access-token (own)", keywords: ["ya29."], re: `${B}ya29\\.[\\w-]{20,}` },
  { id: "google-oauth-refresh-token (own)", keywords: ["1//0"], re: `${B}1//0[\\w-]{40,}` },
  {
    id: "azure-ad-client-secret",
    keywords: ["q~"],
    re: "(?<![A-Za-z0-9_~.])[a-zA-Z0-9_~.]{3}\\dQ~[a-zA-Z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])",
  },
  { id: "alibaba-access-key-id", keywords: ["ltai"], re: `${B}LTAI[A-Za-z0-9]{20}${E}` },
  {
    id: "digitalocean-access/pat/refresh-token",
    keywords: ["doo_v1_", "dop_v1_", "dor_v1_"],
    re: "do[opr]_v1_[a-f0-9]{64}",
  },
  { id: "heroku-api-key-v2", keywords: ["hrku-aa"], re: `${B}HRKU-AA[\\w-]{58}` },
  {
    id: "flyio-access-token",
    keywords: ["fo1_", "fm1", "fm2_"],
    re: `${B}(?:fo1_[\\w-]{43}|fm1[ar]_[a-zA-Z0-9+/]{100,}={0,3}|fm2_[a-zA-Z0-9+/]{100,}={0,3})`,
  },
  { id: "cloudflare-origin-ca-key", keywords: ["v1.0-"], re: `${B}v1\\.0-[a-f0-9]{24}-[a-f0-9]{146}` },
  { id: "openshift-user-token", keywords: ["sha256~"], re: `${B}sha256~[\\w-]{43}` },
  { id: "vault-service/batch-token", keywords: ["hvs.", "hvb."], re: `${B}hv[sb]\\.[\\w-]{90,300}` },
  { id: "scalingo-api-token", keywords: ["tk-us-"], re: `${B}tk-us-[\\w-]{48}` },
  // Package registries and developer tools.
  { id: "npm-access-token", keywords: ["npm_"], re: `${B}npm_[A-Za-z0-9]{36,}`, flags: "i" },
  { id: "pypi-upload-token", keywords: ["pypi-age"], re: "pypi-AgE[\\w-]{50,}" },
  { id: "rubygems-api-token", keywords: ["rubygems_"], re: `${B}rubygems_[a-f0-9]{48}` },
  { id: "clojars-api-token", keywords: ["clojars_"], re: "CLOJARS_[a-z0-9]{60}", flags: "i" },
  { id: "dockerhub-pat (own)", keywords: ["dckr_pat_", "dckr_oat_"], re: `${B}dckr_(?:pat|oat)_[\\w-]{20,}` },
  { id: "artifactory-api-key", keywords: ["akcp"], re: `${B}AKCp[A-Za-z0-9]{69}${E}` },
  { id: "artifactory-reference-token", keywords: ["cmvmd"], re: `${B}cmVmd[A-Za-z0-9]{59}${E}` },
  { id: "databricks-api-token", keywords: ["dapi"], re: `${B}dapi[a-f0-9]{32}(?:-\\d)?${E}` },
  {
    id: "doppler-api-token",
    keywords: ["dp.pt.", "dp.st.", "dp.sa.", "dp.ct."],
    re: "dp\\.(?:pt|st|sa|ct)\\.[A-Za-z0-9]{40,}",
  },
  { id: "dynatrace-api-token", keywords: ["dt0c01."], re: "dt0c01\\.[A-Za-z0-9]{24}\\.[A-Za-z0-9]{64}" },
  { id: "grafana-cloud-api-token", keywords: ["glc_"], re: `${B}glc_[A-Za-z0-9+/]{32,400}={0,3}` },
  { id: "grafana-service-account-token", keywords: ["glsa_"], re: `${B}glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}` },
  { id: "grafana-api-key", keywords: ["eyjrijoi"], re: `${B}eyJrIjoi[A-Za-z0-9]{70,400}={0,3}` },
  { id: "sentry-org/user-token", keywords: ["sntrys_", "sntryu_"], re: `${B}sntry[su]_[A-Za-z0-9+/=_]{40,}` },
  { id: "linear-api-key", keywords: ["lin_api_"], re: "lin_api_[A-Za-z0-9]{40}" },
  { id: "postman-api-token", keywords: ["pmak-"], re: `${B}PMAK-[a-f0-9]{24}-[a-f0-9]{34}`, flags: "i" },
  { id: "pulumi-api-token", keywords: ["pul-"], re: `${B}pul-[a-f0-9]{40}${E}` },
  { id: "prefect-api-token", keywords: ["pnu_"], re: `${B}pnu_[a-zA-Z0-9]{36}` },
  { id: "readme-api-token", keywords: ["rdme_"], re: `${B}rdme_[a-z0-9]{70}` },
  {
    id: "planetscale-api/oauth-token/password",
    keywords: ["pscale_"],
    re: `${B}pscale_(?:tkn|oauth|pw)_[\\w=.-]{32,64}`,
  },
  { id: "notion-api-token", keywords: ["ntn_"], re: `${B}ntn_[0-9]{11}[A-Za-z0-9]{35}` },
  { id: "infracost-api-token", keywords: ["ico-"], re: `${B}ico-[a-zA-Z0-9]{32}${E}` },
  { id: "frameio-api-token", keywords: ["fio-u-"], re: "fio-u-[\\w=-]{64}" },
  { id: "octopus-deploy-api-key", keywords: ["api-"], re: `${B}API-[A-Z0-9]{26}${E}` },
  { id: "atlassian-api-token", keywords: ["atatt3"], re: `${B}ATATT3[\\w=-]{186}` },
  { id: "1password-service-account-token", keywords: ["ops_"], re: "ops_eyJ[a-zA-Z0-9+/]{250,}={0,3}" },
  {
    id: "1password-secret-key",
    keywords: ["a3-"],
    re: "\\bA3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}\\b",
  },
  {
    id: "age-secret-key",
    keywords: ["age-secret-key-1"],
    re: "AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
  },
  { id: "clickhouse-cloud-api-secret-key", keywords: ["4b1d"], re: `${B}4b1d[A-Za-z0-9]{38}${E}` },
  { id: "intra42-client-secret", keywords: ["s-s4t2"], re: `${B}s-s4t2(?:ud|af)-[a-f0-9]{64}` },
  { id: "settlemint-tokens", keywords: ["sm_aat", "sm_pat", "sm_sat"], re: `${B}sm_(?:aat|pat|sat)_[a-zA-Z0-9]{16}` },
  // Payments, messaging, commerce.
  { id: "stripe-access-token", keywords: ["sk_", "rk_"], re: `${B}(?:sk|rk)_(?:test|live|prod)_[a-zA-Z0-9]{10,}` },
  { id: "stripe-webhook-secret (own)", keywords: ["whsec_"], re: `${B}whsec_[a-zA-Z0-9]{20,}` },
  {
    id: "square-access-token",
    keywords: ["sq0atp-", "sq0csp-", "eaaa"],
    re: `${B}(?:EAAA|sq0atp-|sq0csp-)[\\w-]{22,60}`,
  },
  {
    id: "shopify-tokens",
    keywords: ["shpat_", "shpca_", "shppa_", "shpss_"],
    re: "shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}",
  },
  { id: "shippo-api-token", keywords: ["shippo_"], re: `${B}shippo_(?:live|test)_[a-fA-F0-9]{40}` },
  { id: "duffel-api-token", keywords: ["duffel_"], re: "duffel_(?:test|live)_[\\w=-]{43}" },
  { id: "easypost-api-token", keywords: ["ezak", "eztk"], re: `${B}EZ[AT]K[A-Za-z0-9]{54}` },
  {
    id: "flutterwave-keys",
    keywords: ["flwseck_test", "flwpubk_test"],
    re: "FLW(?:SECK|PUBK)_TEST-[a-hA-H0-9]{12,32}(?:-X)?",
  },
  { id: "adobe-client-secret", keywords: ["p8e-"], re: `${B}p8e-[A-Za-z0-9]{32}${E}` },
  { id: "facebook-page-access-token", keywords: ["eaam", "eaac"], re: `${B}EAA[MC][A-Za-z0-9]{100,}` },
  { id: "sendgrid-api-token", keywords: ["sg."], re: `${B}SG\\.[\\w=.-]{66}` },
  { id: "sendinblue-api-token", keywords: ["xkeysib-"], re: `${B}xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}` },
  { id: "twilio-api-key", keywords: ["sk"], re: `${B}SK[0-9a-fA-F]{32}${E}` },
  { id: "mailchimp-api-key", keywords: ["-us"], re: `${B}[a-f0-9]{32}-us\\d{1,2}${E}` },
  { id: "telegram-bot-api-token (own shape)", keywords: [":aa"], re: `${B}\\d{8,10}:AA[\\w-]{33}${E}` },
  {
    id: "microsoft-teams-webhook",
    keywords: ["webhook.office.com"],
    re: "https://[a-z0-9]+\\.webhook\\.office\\.com/webhookb2/[a-z0-9-]{36}@[a-z0-9-]{36}/IncomingWebhook/[a-z0-9]{32}/[a-z0-9-]{36}",
  },
  // Tokens by shape and by place.
  {
    id: "jwt",
    keywords: ["ey"],
    re: `${B}ey[A-Za-z0-9_-]{10,}\\.ey[A-Za-z0-9_/\\\\-]{10,}\\.(?:[A-Za-z0-9_/\\\\-]{10,}={0,2})?`,
  },
  {
    id: "url-credentials (own)",
    keywords: ["://"],
    re: "(?<keep>\\b[A-Za-z][A-Za-z0-9+.-]{1,20}://)(?<s>[^\\s/?#@:'\"<>]+:[^\\s/?#@'\"<>]+)(?=@)",
  },
  {
    id: "authorization-header (own)",
    keywords: ["authorization"],
    re: "(?<keep>\\b(?:Proxy-)?Authorization[\"']?[ \\t]{0,3}[:=][ \\t]{0,3}[\"']?(?:(?:Bearer|Basic|Token|Digest|Negotiate|AWS4-HMAC-SHA256)[ \\t]+)?)(?<s>[\\w.~+/=:,-]{8,})",
    flags: "i",
  },
  {
    id: "bearer-token (own)",
    keywords: ["bearer"],
    re: "(?<keep>\\bBearer[ \\t]+)(?<s>[\\w.~+/-]{16,}=*)",
    flags: "i",
  },
  {
    id: "curl-auth-user",
    keywords: ["curl"],
    re: "(?<keep>\\bcurl\\b[^\\n]*?[ \\t](?:-u|--user)(?:=|[ \\t]{1,5})[\"']?)(?<s>[^\\s\"':]{1,}:[^\\s\"']{3,})",
  },
  {
    id: "generic-assignment (after gitleaks generic-api-key)",
    keywords: ["secret", "token", "passw", "pwd", "credential", "creds", "key"],
    re: `(?<keep>${SECRET_NAME}${ASSIGN})(?<s>[^\\s"'\\x60;,<>(){}\\[\\]\\\\]{8,400})`,
    flags: "i",
    check: secretValue,
  },
];

function compile(spec: RuleSpec): SecretRule {
  const source = spec.re.includes("(?<s>") ? spec.re : `(?<s>${spec.re})`;
  return {
    id: spec.id,
    keywords: spec.keywords,
    regex: new RegExp(source, `g${spec.flags ?? ""}`),
    ...(spec.check ? { check: spec.check } : {}),
  };
}

/** The rules, compiled once, in the order they are applied. */
export const SECRET_RULES: readonly SecretRule[] = SPECS.map(compile);

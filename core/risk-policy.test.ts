import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { matchesPattern, parseRiskPolicy, type RiskPolicyInput, riskTier } from "./risk-policy.ts";

const base: RiskPolicyInput = {
  version: "1",
  riskTierRules: {
    high: ["app/auth/**", ".claude/hooks/**", "src/*.py", "Makefile"],
    medium: ["app/**", "/config.json"],
    low: ["docs/**", "*.md", "*.txt"],
  },
  mergePolicy: {
    high: { requiredChecks: ["risk-policy-gate", "tests", "claude-review", "spec-audit"], humanApprovalRequired: true },
    medium: { requiredChecks: ["risk-policy-gate", "tests", "claude-review"] },
    low: { requiredChecks: ["risk-policy-gate", "tests"] },
  },
  blockedPatterns: [
    { pattern: "**/.env", reason: "secrets" },
    { pattern: "*.pem", reason: "keys", tier: "medium" },
  ],
};
const policy = parseRiskPolicy(base);

describe("matchesPattern", () => {
  it.each([
    // The seed's fnmatch let `*` cross `/`: here it does not.
    ["src/a/b.py", "src/*.py", false],
    ["src/b.py", "src/*.py", true],
    // Slash-free patterns match any path segment (.gitignore style), so `*.md` covers nested docs…
    ["docs/a/b.md", "*.md", true],
    ["README.md", "*.md", true],
    // …but an anchored one only the root.
    ["docs/README.md", "/*.md", false],
    ["README.md", "/*.md", true],
    // The seed's `app/auth/**` missed `app/auth` itself.
    ["app/auth", "app/auth/**", true],
    ["app/auth/login.ts", "app/auth/**", true],
    ["app/authz.ts", "app/auth/**", false],
    ["app/auth/deep/x/y.ts", "app/auth", true],
    ["app/auth/deep/x/y.ts", "app/auth/", true],
    // Case-sensitive, like git paths.
    ["README.MD", "*.md", false],
    ["App/auth/x.ts", "app/auth/**", false],
    // Dotfiles are ordinary files.
    [".env", "**/.env", true],
    ["a/b/.env", "**/.env", true],
    [".claude/hooks/safety.sh", ".claude/hooks/**", true],
    [".github/workflows/ci.yml", "*.yml", true],
    ["charts/agentfactory/templates/rbac.yaml", "charts/**/templates/*rbac*", true],
    ["charts/agentfactory/templates/deploy.yaml", "charts/**/templates/*rbac*", false],
    ["a/b/c.ts", "a/**/c.ts", true],
    ["a/c.ts", "a/**/c.ts", true],
    ["./docs/x.md", "docs/**", true],
    ["core/x.ts", "{core,gateway}/**", true],
  ])("%s vs %s → %s", (file, pattern, expected) => {
    expect(matchesPattern(file, pattern)).toBe(expected);
  });
});

describe("riskTier", () => {
  it.each([
    { files: [], tier: "low" },
    { files: ["unknown/thing.go"], tier: "low" },
    { files: ["docs/guide.md"], tier: "low" },
    { files: ["app/models.py"], tier: "medium" },
    { files: ["config.json"], tier: "medium" },
    { files: ["nested/config.json"], tier: "low" },
    { files: ["src/a/b.py"], tier: "low" },
    { files: ["src/b.py"], tier: "high" },
    { files: ["app/auth"], tier: "high" },
    // Highest tier wins, whatever the order.
    { files: ["docs/a.md", "app/x.py", "app/auth/y.py"], tier: "high" },
    { files: ["app/auth/y.py", "docs/a.md"], tier: "high" },
    { files: ["docs/a.md", "app/x.py"], tier: "medium" },
    // A high pattern beats a low one matching the same file.
    { files: [".claude/hooks/README.md"], tier: "high" },
  ] as const)("$files → $tier", ({ files, tier }) => {
    const decision = riskTier([...files], policy);
    expect(decision.tier).toBe(tier);
    expect(decision.blocked).toBe(false);
    expect(decision.requiredChecks).toEqual(policy.mergePolicy[tier]?.requiredChecks);
    expect(decision.humanApprovalRequired).toBe(tier === "high");
  });

  it("reports the deciding pattern per file and the unmatched files", () => {
    const decision = riskTier(["app/auth/y.py", "docs/a.md", "./docs/a.md", "", "x/y"], policy);
    expect(decision.matches).toEqual([
      { file: "app/auth/y.py", tier: "high", pattern: "app/auth/**" },
      { file: "docs/a.md", tier: "low", pattern: "docs/**" },
    ]);
    expect(decision.unmatched).toEqual(["x/y"]);
  });

  it("blocks on blockedPatterns and raises the tier to the pattern's tier (default high)", () => {
    const env = riskTier(["docs/a.md", "services/api/.env"], policy);
    expect(env).toMatchObject({
      tier: "high",
      blocked: true,
      humanApprovalRequired: true,
      blockedBy: [{ file: "services/api/.env", pattern: "**/.env", reason: "secrets" }],
    });
    const pem = riskTier(["certs/server.pem"], policy);
    expect(pem).toMatchObject({ tier: "medium", blocked: true, blockedBy: [{ pattern: "*.pem", reason: "keys" }] });
    expect(riskTier(["certs/server.pem.txt"], policy).blocked).toBe(false);
  });

  it("lets tier lists be omitted (only low is needed)", () => {
    const onlyLow = parseRiskPolicy({
      version: 2,
      riskTierRules: { low: ["**"] },
      mergePolicy: { low: { requiredChecks: ["risk-policy-gate"] } },
    });
    expect(onlyLow.version).toBe("2");
    expect(riskTier(["a/b"], onlyLow)).toMatchObject({ tier: "low", requiredChecks: ["risk-policy-gate"] });
  });
});

describe("ALWAYS_HIGH: built-in high-risk paths", () => {
  const lax = parseRiskPolicy({
    version: "1",
    riskTierRules: { low: ["**", ".claude/**", ".github/**"] },
    mergePolicy: { low: { requiredChecks: ["risk-policy-gate"] } },
  });
  it.each([
    [".claude/settings.json", ".claude/settings.json"],
    [".claude/hooks/check.sh", ".claude/hooks/check.sh"],
    [".claude/rules/patterns.md", ".claude/rules/patterns.md"],
    ["nested project settings", "packages/app/.claude/settings.local.json"],
    ["a workflow", ".github/workflows/ci.yml"],
  ])("%s is high even when the policy says low, with every check and a human", (_name, file) => {
    const d = riskTier(["README.md", file], lax);
    expect(d).toMatchObject({ tier: "high", humanApprovalRequired: true });
    expect(d.requiredChecks).toEqual(["risk-policy-gate", "tests", "claude-review", "spec-audit"]);
    expect(d.matches.find((m) => m.file === file)?.tier).toBe("high");
  });

  it("uses the policy's own high rule when it has one", () => {
    const d = riskTier([".github/workflows/ci.yml"], policy);
    expect(d.tier).toBe("high");
    expect(d.requiredChecks).toEqual(policy.mergePolicy.high?.requiredChecks);
    expect(d.matches[0]?.pattern).toBe(".github/workflows/**");
  });

  it("leaves look-alikes alone", () => {
    for (const file of [".github/CODEOWNERS", "docs/.github/workflows/x.yml", ".claude-notes.md", "claude/x"])
      expect(riskTier([file], lax).tier, file).toBe("low");
  });
});

/** A policy document being broken on purpose. */
type Draft = {
  version?: unknown;
  riskTierRules: Record<string, string[]>;
  mergePolicy: Record<string, { requiredChecks: string[] }>;
  blockedPatterns: { reason: string }[];
};

describe("parseRiskPolicy", () => {
  const broken = (patch: (p: Draft) => unknown) => {
    const copy = structuredClone(base) as unknown as Draft;
    patch(copy);
    return () => parseRiskPolicy(copy);
  };
  it.each([
    ["unknown tier", (p: Draft) => (p.riskTierRules.critical = ["x"]), /riskTierRules: Unrecognized key.*critical/],
    ["merge rule missing", (p: Draft) => delete p.mergePolicy.medium, /mergePolicy\.medium: missing/],
    [
      "merge rule for absent tier",
      (p: Draft) => delete p.riskTierRules.medium,
      /mergePolicy\.medium: riskTierRules has no/,
    ],
    [
      "low merge rule missing",
      (p: Draft) => delete p.mergePolicy.low && delete p.riskTierRules.low,
      /mergePolicy\.low/,
    ],
    [
      "empty pattern",
      (p: Draft) => (p.riskTierRules.high![1] = " "),
      /riskTierRules\.high\.1: pattern must not be empty/,
    ],
    ["negated pattern", (p: Draft) => (p.riskTierRules.low![0] = "!docs/**"), /riskTierRules\.low\.0: negated/],
    [
      "unknown check",
      (p: Draft) => (p.mergePolicy.low!.requiredChecks = ["lint"]),
      /mergePolicy\.low\.requiredChecks\.0/,
    ],
    ["blocked without reason", (p: Draft) => (p.blockedPatterns[0]!.reason = ""), /blockedPatterns\.0\.reason/],
    ["no version", (p: Draft) => delete p.version, /version/],
  ])("rejects %s", (_name, patch, message) => {
    expect(broken(patch)).toThrow(message);
  });

  it("rejects non-objects", () => {
    expect(() => parseRiskPolicy("high")).toThrow(/invalid risk policy: \(root\)/);
  });

  it("accepts the shipped risk-policy.json, which rates AgentFactory's own sensitive paths high", () => {
    const shipped = parseRiskPolicy(JSON.parse(readFileSync(new URL("../risk-policy.json", import.meta.url), "utf8")));
    const tierOf = (file: string) => riskTier([file], shipped).tier;
    expect(tierOf("risk-policy.json")).toBe("high");
    expect(tierOf("operator/reconciler.ts")).toBe("high");
    expect(tierOf("runner-image/src/hooks/safety.ts")).toBe("high");
    expect(tierOf("charts/agentfactory/templates/rbac.yaml")).toBe("high");
    expect(tierOf("core/plan.ts")).toBe("medium");
    expect(tierOf("docs/guide.md")).toBe("low");
    expect(tierOf("test/world/podman.ts")).toBe("low");
    expect(riskTier(["operator/x.ts"], shipped).humanApprovalRequired).toBe(true);
    expect(riskTier(["deploy/.env"], shipped).blocked).toBe(true);
  });
});

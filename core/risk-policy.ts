import { Minimatch } from "minimatch";
import { z } from "zod";
import { RiskTier } from "./result.ts";

/**
 * The risk policy (`risk-policy.json`, the seed's format): which changed files make a pull request
 * high, medium or low risk, which checks each tier requires, and which paths may never be changed.
 *
 * Glob semantics (decided here, and different from the seed's fnmatch-based gate on purpose):
 * - minimatch: `*` and `?` never cross `/`, `**` spans any number of directories, dotfiles match
 *   like any other file, braces expand. Matching is case-sensitive, like git paths.
 * - A pattern without `/` is matched against every path segment, like .gitignore: `*.md` matches
 *   `docs/a.md`, `.env` matches `a/b/.env`. A leading `/` anchors a pattern at the repository root
 *   (`/*.md` matches `README.md` only).
 * - A pattern that matches a directory covers everything below it (`docs` and `docs/` cover
 *   `docs/a/b.md`), and `dir/**` also covers `dir` itself (a submodule or a file replacing the
 *   directory shows up in a diff as the bare path).
 * - Negations (`!x`) and comments (`#x`) are rejected: each list only ever adds matches.
 * - The highest tier wins; files that match no pattern are low; an empty change list is low.
 * - {@link ALWAYS_HIGH} paths are high whatever the policy lists. When the policy has no `high` merge
 *   rule, such a change requires every check and a human ({@link STRICTEST_RULE}).
 */

/** Checks the review stage knows how to run; a policy naming any other is rejected at load time. */
export const RiskCheck = z.enum(["risk-policy-gate", "tests", "claude-review", "spec-audit"]);
export type RiskCheck = z.infer<typeof RiskCheck>;

/**
 * Built in, not configurable: the agent's own hooks, settings and rules (`.claude/`, at any depth: Claude
 * Code reads nested ones too) and CI workflows (they run with the repository's secrets). A policy on the
 * branch under review cannot lower them, and neither can a policy that forgot them.
 */
export const ALWAYS_HIGH = ["**/.claude/**", ".github/workflows/**"] as const;

/** Highest first: the order in which a file's tier is decided. */
export const TIERS_HIGH_FIRST = ["high", "medium", "low"] as const satisfies readonly RiskTier[];

const Pattern = z
  .string()
  .refine((p) => p.trim().length > 0, "pattern must not be empty")
  .refine((p) => !p.startsWith("!"), "negated patterns ('!…') are not supported: list only what matches")
  .refine((p) => !p.startsWith("#"), "patterns must not start with '#'");

const TierRules = z
  .object({ high: z.array(Pattern), medium: z.array(Pattern), low: z.array(Pattern) })
  .partial()
  .strict();

const MergeRule = z
  .object({
    requiredChecks: z.array(RiskCheck),
    humanApprovalRequired: z.boolean().optional(),
    description: z.string().optional(),
  })
  .strict();

const BlockedPattern = z
  .object({ pattern: Pattern, reason: z.string().min(1, "reason must not be empty"), tier: RiskTier.optional() })
  .strict();

export const RiskPolicySchema = z
  .object({
    $schema: z.string().optional(),
    version: z.union([z.string().min(1), z.number()]).transform(String),
    riskTierRules: TierRules,
    mergePolicy: z.object({ high: MergeRule, medium: MergeRule, low: MergeRule }).partial().strict(),
    blockedPatterns: z.array(BlockedPattern).default([]),
  })
  .strict()
  .superRefine((policy, ctx) => {
    const ruleTiers = Object.keys(policy.riskTierRules);
    const mergeTiers = Object.keys(policy.mergePolicy);
    for (const tier of ruleTiers)
      if (!mergeTiers.includes(tier))
        ctx.addIssue({ code: "custom", path: ["mergePolicy", tier], message: `missing: riskTierRules has "${tier}"` });
    for (const tier of mergeTiers)
      if (!ruleTiers.includes(tier) && tier !== "low")
        ctx.addIssue({ code: "custom", path: ["mergePolicy", tier], message: `riskTierRules has no "${tier}"` });
    // Unmatched files and empty diffs are low, so low always needs a merge rule.
    if (!policy.mergePolicy.low)
      ctx.addIssue({ code: "custom", path: ["mergePolicy", "low"], message: "missing: unmatched files are low" });
    policy.blockedPatterns.forEach((blocked, i) => {
      const tier = blocked.tier ?? "high";
      if (!policy.mergePolicy[tier])
        ctx.addIssue({ code: "custom", path: ["blockedPatterns", i, "tier"], message: `mergePolicy has no "${tier}"` });
    });
  });

export type RiskPolicy = z.output<typeof RiskPolicySchema>;

/** The merge rule of a tier the policy does not define (only reachable through {@link ALWAYS_HIGH}). */
export const STRICTEST_RULE = { requiredChecks: [...RiskCheck.options], humanApprovalRequired: true } as const;
export type RiskPolicyInput = z.input<typeof RiskPolicySchema>;

/** Thrown by {@link parseRiskPolicy}; `issues` lists every problem as `path: message`. */
export class RiskPolicyError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid risk policy: ${issues.join("; ")}`);
    this.name = "RiskPolicyError";
  }
}

/**
 * Validates a parsed `risk-policy.json`, throwing a {@link RiskPolicyError} that names every problem.
 *
 * @example
 * const policy = parseRiskPolicy(JSON.parse(await readFile("risk-policy.json", "utf8")));
 */
export function parseRiskPolicy(json: unknown): RiskPolicy {
  const parsed = RiskPolicySchema.safeParse(json);
  if (parsed.success) return parsed.data;
  throw new RiskPolicyError(
    parsed.error.issues.map((issue) => `${issue.path.length ? issue.path.join(".") : "(root)"}: ${issue.message}`),
  );
}

export interface RiskDecision {
  tier: RiskTier;
  blocked: boolean;
  blockedBy: { file: string; pattern: string; reason: string }[];
  /** One entry per matched file: its highest tier and the first pattern of that tier that matched. */
  matches: { file: string; tier: RiskTier; pattern: string }[];
  /** Files no tier pattern matched (counted as low). */
  unmatched: string[];
  requiredChecks: RiskCheck[];
  humanApprovalRequired: boolean;
}

/**
 * The risk tier of a change, from its changed paths (`git diff --name-only base...head`).
 *
 * @example
 * riskTier(["operator/job.ts", "README.md"], policy).tier // "high" with AgentFactory's own policy
 */
export function riskTier(files: string[], policy: RiskPolicy): RiskDecision {
  const paths = [...new Set(files.map(normalizePath).filter((f) => f.length > 0))];
  const matches: RiskDecision["matches"] = [];
  const unmatched: string[] = [];
  const blockedBy: RiskDecision["blockedBy"] = [];
  let tier: RiskTier = "low";

  for (const file of paths) {
    const hit = firstTierMatch(file, policy);
    if (hit) {
      matches.push({ file, ...hit });
      tier = higher(tier, hit.tier);
    } else unmatched.push(file);
    for (const blocked of policy.blockedPatterns)
      if (matchesPattern(file, blocked.pattern)) {
        blockedBy.push({ file, pattern: blocked.pattern, reason: blocked.reason });
        tier = higher(tier, blocked.tier ?? "high");
      }
  }

  const rule = policy.mergePolicy[tier] ?? (tier === "high" ? STRICTEST_RULE : undefined);
  return {
    tier,
    blocked: blockedBy.length > 0,
    blockedBy,
    matches,
    unmatched,
    // The gate itself always runs, whatever the policy lists; the rest comes from the policy.
    requiredChecks: rule ? [...rule.requiredChecks] : ["risk-policy-gate"],
    humanApprovalRequired: rule?.humanApprovalRequired ?? false,
  };
}

function firstTierMatch(file: string, policy: RiskPolicy): { tier: RiskTier; pattern: string } | undefined {
  for (const tier of TIERS_HIGH_FIRST) {
    for (const pattern of policy.riskTierRules[tier] ?? []) if (matchesPattern(file, pattern)) return { tier, pattern };
    if (tier === "high") for (const pattern of ALWAYS_HIGH) if (matchesPattern(file, pattern)) return { tier, pattern };
  }
  return undefined;
}

function higher(a: RiskTier, b: RiskTier): RiskTier {
  return TIERS_HIGH_FIRST.indexOf(a) <= TIERS_HIGH_FIRST.indexOf(b) ? a : b;
}

/** Repository-relative, forward slashes, no `./` or leading `/`. */
function normalizePath(file: string): string {
  return file
    .trim()
    .replace(/\\/g, "/")
    .replace(/^(\.\/)+/, "")
    .replace(/^\/+/, "");
}

const compiled = new Map<string, (file: string) => boolean>();

/** Whether one repository path matches one policy pattern, with the semantics documented above. */
export function matchesPattern(file: string, pattern: string): boolean {
  let test = compiled.get(pattern);
  if (!test) {
    test = compile(pattern);
    compiled.set(pattern, test);
  }
  return test(normalizePath(file));
}

function compile(raw: string): (file: string) => boolean {
  let pattern = raw.trim();
  const anchored = pattern.startsWith("/");
  pattern = pattern.replace(/^\/+/, "").replace(/\/+$/, "");
  const options = { dot: true, nocase: false, nonegate: true, nocomment: true };
  const perSegment = !anchored && !pattern.includes("/");
  const whole = new Minimatch(pattern, options);
  // `dir/**` also covers `dir` itself.
  const self = pattern.endsWith("/**") ? new Minimatch(pattern.slice(0, -3), options) : undefined;
  const matchOne = (path: string): boolean => {
    if (perSegment) return whole.match(path.slice(path.lastIndexOf("/") + 1));
    return whole.match(path) || (self?.match(path) ?? false);
  };
  // A match on any leading directory covers the files below it.
  return (file) => {
    for (let end = file.indexOf("/"); end !== -1; end = file.indexOf("/", end + 1))
      if (matchOne(file.slice(0, end))) return true;
    return matchOne(file);
  };
}

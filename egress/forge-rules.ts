import { minimatch } from "minimatch";
import type { StageName } from "../core/result.ts";

/**
 * The forge REST endpoints each stage may call, all under `/repos/{owner}/{repo}` of the run's own
 * repository: exactly what runner-image/src/forge.ts does per stage, nothing more. A stage needing a
 * new endpoint adds it here. GraphQL is not proxied: no stage uses it, and its operations cannot be
 * limited by method and path.
 */
type Rule = readonly [method: string, path: string];

const SEGMENT = "[^/]+";
const NUMBER = "\\d+";

/** Reading the repository, the ticket's comments and labels: every stage. */
const COMMON: Rule[] = [
  ["GET", ""],
  ["GET", "/issues/{n}"],
  ["GET", "/issues/{n}/comments"],
  ["POST", "/issues/{n}/comments"],
  ["GET", "/labels/{name}"],
  ["POST", "/labels"],
  ["POST", "/issues/{n}/labels"],
  ["DELETE", "/issues/{n}/labels/{name}"],
];
const PULL_READ: Rule[] = [
  ["GET", "/pulls"],
  ["GET", "/pulls/{n}"],
  ["GET", "/pulls/{n}/files"],
  ["GET", "/pulls/{n}/reviews"],
  ["GET", "/contents/{path}"],
];

export const STAGE_API_RULES: Record<StageName, Rule[]> = {
  triage: [...COMMON, ["GET", "/contents/{path}"]],
  write: [...COMMON, ...PULL_READ, ["POST", "/pulls"], ["PATCH", "/pulls/{n}"]],
  review: [...COMMON, ...PULL_READ, ["POST", "/pulls/{n}/reviews"]],
  remediate: [...COMMON, ...PULL_READ, ["PATCH", "/pulls/{n}"]],
};

const compiled = new Map<string, RegExp>();
function pattern(path: string): RegExp {
  let re = compiled.get(path);
  if (!re) {
    const body = path
      .replace(/\{n\}/g, NUMBER)
      .replace(/\{path\}/g, ".+")
      .replace(/\{name\}/g, SEGMENT);
    re = new RegExp(`^${body}$`);
    compiled.set(path, re);
  }
  return re;
}

export type ApiDecision = { allowed: true; repo: string } | { allowed: false; reason: string };

/**
 * Decides one REST call. `path` is the request path below the API base (e.g. `/repos/acme/calc/pulls`),
 * percent-decoding is left to the forge; `..` segments and encoded slashes are refused outright.
 */
export function decideApi(stage: StageName, repo: string, method: string, path: string): ApiDecision {
  if (/(^|\/)\.\.?(\/|$)|%2f|%5c|%2e|\\/i.test(path)) return { allowed: false, reason: "path not normalized" };
  const m = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(path);
  if (!m) return { allowed: false, reason: "only the run's repository endpoints are allowed" };
  const target = `${m[1]}/${m[2]}`;
  if (target.toLowerCase() !== repo.toLowerCase()) {
    return { allowed: false, reason: `repository ${target} is not the run's repository` };
  }
  const rest = m[3] ?? "";
  const verb = method.toUpperCase() === "HEAD" ? "GET" : method.toUpperCase();
  for (const [ruleMethod, rulePath] of STAGE_API_RULES[stage]) {
    if (ruleMethod === verb && pattern(rulePath).test(rest)) return { allowed: true, repo: target };
  }
  return { allowed: false, reason: `${verb} ${rest || "/"} is not allowed in the ${stage} stage` };
}

/** Protected paths a push may not touch (minimatch, dot files included). */
export function protectedTouched(paths: string[], protectedPaths: string[]): string[] {
  return paths.filter((p) => protectedPaths.some((glob) => minimatch(p, glob, { dot: true })));
}

/**
 * What a write may say, where the endpoint alone is not narrow enough: a pull request is opened only
 * from the run's branch, and an update changes only its title and body (not its base, state or
 * maintainer settings). Undefined when the body is fine.
 */
export function bodyRefusal(
  method: string,
  path: string,
  body: Buffer | null,
  run: { repo: string; branch: string },
): string | undefined {
  const rest = path.replace(/^\/repos\/[^/]+\/[^/]+/, "");
  const verb = method.toUpperCase();
  const opening = verb === "POST" && rest === "/pulls";
  const updating = verb === "PATCH" && /^\/pulls\/\d+$/.test(rest);
  if (!opening && !updating) return undefined;
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(body?.toString("utf8") ?? "");
  } catch {
    return "the request body is not JSON";
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) return "the request body is not a JSON object";
  if (opening) {
    const owner = run.repo.split("/")[0]?.toLowerCase();
    const head = String(json.head ?? "");
    const [headOwner, headBranch] = head.includes(":") ? head.split(/:(.*)/s) : [owner, head];
    if (headBranch !== run.branch || headOwner?.toLowerCase() !== owner) {
      return `a pull request may be opened only from ${run.branch}`;
    }
    if ("head_repo" in json || "issue" in json) return "head_repo and issue are not allowed";
    return undefined;
  }
  const extra = Object.keys(json).filter((k) => k !== "title" && k !== "body");
  return extra.length ? `only the title and body of a pull request may change, not ${extra.join(", ")}` : undefined;
}

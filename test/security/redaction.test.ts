/**
 * Issue 14, item 9: the model, fully steered, writes secrets of every format the old redaction missed
 * (and the stage's own token and model key) into everything that leaves the runner pod: the triage
 * question and spec comment, the draft PR's title and body and the commit message, the review body, its
 * inline comments and embedded findings, the remediation answer, the result and the logs; a repository
 * file full of secrets is read into the model's context. Played through the real runner stages against
 * the GitHub simulator and the scripted model; the test asserts none of it reaches what GitHub stored,
 * the pod's logs and result, or the model's requests. Positive control: the same text posted without the
 * runner is stored verbatim by the simulator, so the assertions can see a leak.
 */
import { execFileSync } from "node:child_process";
import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { branchName } from "../../core/names.ts";
import { REDACTED } from "../../core/redact.ts";
import { CALC_FILES, type RunnerRun, runRunner, stageEnv, TEST_MODEL_KEY, ticketFor } from "../runner/harness.ts";
import { type MessagesRequest, type ModelSim, startModelSim, text, toolUse, turn } from "../world/anthropic/index.ts";
import { type GitHubSim, startGitHubSim } from "../world/github/index.ts";
import { tokenForms } from "./leaks.ts";

const REPO = "acme/calc";

/** Deterministic pseudo-random text (no real secret is ever written down). */
function rnd(alphabet: string, n: number, seed = n): string {
  let x = seed * 2654435761 + 7;
  let out = "";
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out += alphabet[x % alphabet.length];
  }
  return out;
}
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const WORD = `${ALNUM}_-`;
const B64 = `${ALNUM}+/`;

interface Leak {
  format: string;
  /** What the model writes. */
  text: string;
  /** What must not be found anywhere outside the pod. */
  needles: string[];
}

const awsSecret = rnd(B64, 40, 3);
const urlPassword = rnd(ALNUM, 18, 4);
const pgpBody = rnd(B64, 64, 5);
const ghs = `ghs_${rnd(ALNUM, 36, 6)}`;
const hidden = `ghp_${rnd(ALNUM, 36, 7)}`;
const hiddenB64 = Buffer.from(hidden).toString("base64");

/** Each format of issue 14 item 9. */
const LEAKS: Leak[] = [
  { format: "Slack app token", text: `xapp-1-A0${rnd(ALNUM, 9, 1)}-1234567890123-${rnd("0123456789abcdef", 64, 1)}` },
  { format: "Slack refresh token", text: `xoxe-1-${rnd("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 146, 2)}` },
  { format: "npm token", text: `npm_${rnd(ALNUM, 36, 8)}` },
  { format: "PyPI token", text: `pypi-AgEIcHlwaS5vcmc${rnd(WORD, 64, 9)}` },
  { format: "GitLab PAT", text: `glpat-${rnd(WORD, 20, 10)}` },
  { format: "Google OAuth token", text: `ya29.a0${rnd(WORD, 80, 11)}` },
  { format: "OpenAI project key", text: `sk-proj-${rnd(WORD, 58, 12)}T3BlbkFJ${rnd(WORD, 58, 13)}` },
  { format: "Stripe live key", text: `sk_live_${rnd(ALNUM, 32, 14)}` },
  { format: "AWS secret key in JSON", text: `{"aws_secret_access_key": "${awsSecret}"}`, needles: [awsSecret] },
  {
    format: "credentials in a URL",
    text: `https://deploy:${urlPassword}@registry.example.test/v2/`,
    needles: [urlPassword],
  },
  {
    format: "PGP private key",
    text: `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF${pgpBody}\n=AbCd\n-----END PGP PRIVATE KEY BLOCK-----`,
    needles: [pgpBody],
  },
  { format: "token glued to a prefix", text: `TOKEN_${ghs}`, needles: [ghs] },
  { format: "base64 of a token", text: `blob: ${hiddenB64}`, needles: [hiddenB64, hidden] },
].map((l) => ({ ...l, needles: l.needles ?? [l.text] }));

/** Every leak in one text, one per line, as a steered model would write it. */
const payload = (where: string) =>
  [`Here is everything for the ${where}:`, ...LEAKS.map((l) => `- ${l.format}: ${l.text}`)].join("\n");

let gh: GitHubSim;
let model: ModelSim;
let token = "";
/** The stage's own secrets, which a steered model could also echo (its token and the model key). */
const own = () => [...tokenForms(token), TEST_MODEL_KEY, Buffer.from(TEST_MODEL_KEY).toString("base64")];
const allNeedles = () => [...LEAKS.flatMap((l) => l.needles), ...own()];
/** Needles found in `text`, by format (empty when clean). */
const leaksIn = (text: string) => [
  ...LEAKS.filter((l) => l.needles.some((n) => text.includes(n))).map((l) => l.format),
  ...own()
    .filter((n) => text.includes(n))
    .map(() => "the stage's own secret"),
];

const T = {
  unclear: "Redaction unclear",
  clear: "Redaction clear",
  write: "Redaction write",
  control: "Redaction control",
};
const titleOf = (req: MessagesRequest) => {
  const first = JSON.stringify(req.messages[0]);
  return Object.values(T).find((t) => first.includes(t)) ?? "";
};
const ownText = () => `and the runner's own: ${token} ${TEST_MODEL_KEY}`;

beforeAll(async () => {
  gh = await startGitHubSim();
  await gh.createRepo(REPO, {
    ...CALC_FILES,
    // A repository file full of secrets: whatever the agent reads of it is redacted before the model sees it.
    "notes/credentials.txt": `${payload("notes file")}\n`,
  });
  gh.createIssue(REPO, { title: T.unclear, body: "Make it faster.", user: "mallory" }); // #1
  gh.createIssue(REPO, { title: T.clear, body: "Fix add().", user: "mallory" }); // #2
  gh.createIssue(REPO, { title: `${T.write} ${LEAKS[2]?.text}`, body: "Fix add().", user: "mallory" }); // #3
  gh.createIssue(REPO, { title: T.control, body: "Control.", user: "mallory" }); // #4
  token = gh.mintToken(REPO);
  const review = (req: MessagesRequest) => {
    const audit = JSON.stringify(req.system).includes("You audit");
    return turn(
      toolUse("report_findings", {
        summary: payload("review summary"),
        findings: audit
          ? []
          : [
              {
                severity: "high",
                file: "src/add.js",
                line: 2,
                title: `Hard-coded credential ${LEAKS[7]?.text}`,
                detail: `${payload("review finding")}\n${ownText()}`,
                blocking: true,
              },
            ],
      }),
    );
  };
  model = await startModelSim({
    scenario: {
      triage: [
        (req) =>
          titleOf(req) === T.unclear
            ? turn(
                toolUse("triage_verdict", {
                  verdict: "unclear",
                  summary: "Make something faster.",
                  question: payload("question"),
                  defaultAssumption: `Use ${LEAKS[0]?.text} ${ownText()}`,
                  why: `Because ${LEAKS[10]?.text}`,
                }),
              )
            : turn(toolUse("Read", { file_path: "notes/credentials.txt" })),
        turn(
          toolUse("triage_verdict", {
            verdict: "clear",
            summary: payload("spec summary"),
            plan: [`Fix the operator, then log in with ${LEAKS[9]?.text}`, ownText()],
            acceptanceCriteria: [`add(2, 3) returns 5 and ${LEAKS[11]?.text} works`],
            filesToChange: ["src/add.js"],
            riskTier: "low",
          }),
        ),
      ],
      write: [
        turn(toolUse("Read", { file_path: "notes/credentials.txt" })),
        turn(toolUse("Edit", { file_path: "src/add.js", old_string: "return a - b;", new_string: "return a + b;" })),
        turn(text(`Fixed add().\n\n${payload("PR body")}\n${ownText()}`)),
      ],
      review: [review],
      remediate: [
        turn(toolUse("Edit", { file_path: "src/add.js", old_string: "return a + b;", new_string: "return b + a;" })),
        turn(
          toolUse("report_remediation", {
            summary: payload("remediation summary"),
            answers: [{ finding: 1, status: "fixed", note: `Rotated ${LEAKS[5]?.text}; ${ownText()}` }],
          }),
        ),
      ],
    },
  });
}, 120_000);

afterAll(async () => {
  await model?.stop();
  await gh?.stop();
});

const env = (stage: string, number: number, title: string, context?: unknown) =>
  stageEnv({ gh, model }, stage, `calc-${number}-redact`, ticketFor(REPO, number, title, "Fix add()."), {
    GITHUB_TOKEN: token,
    ...(context ? { AGENTFACTORY_CONTEXT: JSON.stringify(context) } : {}),
  });

/** What left the pod in a run: its logs and its result. */
function podOutput(run: RunnerRun): string {
  return `${run.stderr}\n${JSON.stringify(run.result ?? {})}`;
}

describe("no secret leaves the runner pod, whatever the model writes", () => {
  it("positive control: the same text posted without the runner is stored verbatim (the checks can see a leak)", async () => {
    const octokit = new Octokit({ baseUrl: gh.apiUrl, auth: token });
    await octokit.rest.issues.createComment({
      owner: "acme",
      repo: "calc",
      issue_number: 4,
      body: payload("control") + ownText(),
    });
    const stored = gh
      .comments(REPO, 4)
      .map((c) => c.body)
      .join("\n");
    expect(leaksIn(stored)).toEqual([
      ...LEAKS.map((l) => l.format),
      ...own()
        .slice(0, 1)
        .map(() => "the stage's own secret"),
      "the stage's own secret",
    ]);
  });

  it("triage, unclear: the question comment, the result and the logs", async () => {
    const run = await runRunner(env("triage", 1, T.unclear));
    expect(run.code, run.stderr).toBe(0);
    expect(run.result?.triage?.verdict).toBe("unclear");
    const comments = gh
      .comments(REPO, 1)
      .map((c) => c.body)
      .join("\n");
    expect(comments).toContain("**Question:**");
    expect(comments).toContain(REDACTED);
    expect(leaksIn(comments)).toEqual([]);
    expect(run.result?.triage?.question).toContain(REDACTED);
    expect(leaksIn(podOutput(run))).toEqual([]);
  });

  it("triage, clear: the spec comment, and a secret file read into the model's context", async () => {
    const run = await runRunner(env("triage", 2, T.clear));
    expect(run.code, run.stderr).toBe(0);
    const comments = gh
      .comments(REPO, 2)
      .map((c) => c.body)
      .join("\n");
    expect(comments).toContain("**Acceptance criteria**");
    expect(leaksIn(comments)).toEqual([]);
    expect(leaksIn(podOutput(run))).toEqual([]);
    const sent = JSON.stringify(model.requests.filter((r) => r.stage === "triage").map((r) => r.body));
    expect(sent).toContain("Here is everything for the notes file");
    expect(leaksIn(sent)).toEqual([]);
  });

  let pr = { number: 0, branch: "" };

  it("write: the draft PR's title and body, the commit message and branch, the result and the logs", async () => {
    const title = `${T.write} ${LEAKS[2]?.text}`;
    const run = await runRunner(env("write", 3, title, { clarifications: [], triageSpec: payload("spec") }));
    expect(run.code, run.stderr).toBe(0);
    const pulls = await gh.pulls(REPO);
    expect(pulls).toHaveLength(1);
    const pull = pulls[0]!;
    pr = { number: pull.number, branch: pull.head.ref };
    expect(pull.body).toContain("Fixed add().");
    expect(pull.body).toContain(REDACTED);
    expect(pull.title).toBe(`${T.write} ${REDACTED}`);
    expect(leaksIn(`${pull.title}\n${pull.body}`)).toEqual([]);
    expect(pr.branch).toBe(branchName({ number: 3, workItem: "gh-3", title }));
    expect(pr.branch).toBe("agent/3-redaction-write-redacted");
    const log = execFileSync("git", ["--git-dir", gh.bareDir(REPO), "log", "--format=%B", pr.branch], {
      encoding: "utf8",
    });
    expect(log).toContain(`feat(agent): ${T.write} ${REDACTED}`);
    expect(leaksIn(log)).toEqual([]);
    expect(leaksIn(podOutput(run))).toEqual([]);
    // The ticket's title and the spec went to the model redacted; the file it read too.
    const sent = JSON.stringify(model.requests.filter((r) => r.stage === "write").map((r) => r.body));
    expect(sent).toContain(`${T.write} ${REDACTED}`);
    expect(leaksIn(sent)).toEqual([]);
  });

  it("review: the review body, its inline comment and the embedded findings (still readable by remediation)", async () => {
    const context = {
      clarifications: [],
      triageSpec: "add(2, 3) returns 5",
      pullRequest: { ...pr, url: "", headSha: "" },
    };
    const run = await runRunner(env("review", 3, T.write, context));
    expect(run.code, run.stderr).toBe(0);
    expect(run.result?.review?.findings).toEqual({ total: 1, blocking: 1 });
    const reviews = gh
      .reviews(REPO, pr.number)
      .map((r) => r.body)
      .join("\n");
    const inline = gh
      .reviewComments(REPO, pr.number)
      .map((c) => c.body)
      .join("\n");
    expect(reviews).toContain("Hard-coded credential");
    expect(inline).toContain(REDACTED);
    expect(leaksIn(`${reviews}\n${inline}`)).toEqual([]);
    expect(leaksIn(podOutput(run))).toEqual([]);
  });

  it("remediate: the answer comment (findings parsed back from the redacted review), the result and the logs", async () => {
    const context = { clarifications: [], pullRequest: { ...pr, url: "", headSha: "" }, round: 1 };
    const run = await runRunner(env("remediate", 3, T.write, context));
    expect(run.code, run.stderr).toBe(0);
    const answers = gh
      .comments(REPO, pr.number)
      .map((c) => c.body)
      .join("\n");
    // The finding came back from the embedded JSON: redaction kept it parseable.
    expect(answers).toMatch(/Hard-coded credential \[REDACTED\][\s\S]*fixed: Rotated \[REDACTED\]/);
    expect(leaksIn(answers)).toEqual([]);
    expect(leaksIn(podOutput(run))).toEqual([]);
  });

  it("nothing GitHub stored for the run's issues and pull request holds any of it", async () => {
    const texts = [
      ...[1, 2, 3].flatMap((n) => gh.comments(REPO, n).map((c) => c.body)),
      ...gh.comments(REPO, pr.number).map((c) => c.body),
      ...gh.reviews(REPO, pr.number).map((r) => r.body),
      ...gh.reviewComments(REPO, pr.number).map((c) => c.body),
      ...(await gh.pulls(REPO)).flatMap((p) => [p.title, p.body ?? ""]),
    ].join("\n");
    expect(texts.length).toBeGreaterThan(1000);
    for (const needle of allNeedles()) expect(texts.includes(needle), needle.slice(0, 12)).toBe(false);
  });
});

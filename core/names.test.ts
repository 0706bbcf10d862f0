import { describe, expect, it } from "vitest";
import { branchName, dnsSafe, FORGE_LABELS, jobName, repoLabel, runName, shortenName } from "./names.ts";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const ticket = (over: Partial<Parameters<typeof runName>[0]> = {}) => ({
  id: "github:delivery-1",
  repo: "acme/demo",
  number: 7,
  workItem: "gh-7",
  ...over,
});

describe("dnsSafe", () => {
  it.each([
    ["Hello World", "hello-world"],
    ["--a__b--", "a-b"],
    ["Ünïcödé!", "n-c-d"],
    ["a/b.c", "a-b-c"],
    ["", ""],
    ["日本語", ""],
  ])("%j → %j", (input, output) => {
    expect(dnsSafe(input)).toBe(output);
  });
});

describe("shortenName", () => {
  it("keeps names that fit", () => {
    expect(shortenName("a".repeat(63))).toBe("a".repeat(63));
  });

  it("cuts long names to the limit with a hash of the whole, so long names sharing a prefix differ", () => {
    const a = shortenName(`${"x".repeat(70)}-a`);
    const b = shortenName(`${"x".repeat(70)}-b`);
    expect(a).toHaveLength(63);
    expect(a).not.toBe(b);
    expect(a).toMatch(DNS_LABEL);
    expect(shortenName(`${"x".repeat(70)}-a`)).toBe(a);
  });

  it("never leaves a dash before the hash", () => {
    const name = shortenName(`${"a".repeat(53)}-----${"b".repeat(20)}`);
    expect(name).not.toMatch(/--/);
    expect(name).toMatch(DNS_LABEL);
  });

  it("honours a smaller maximum", () => {
    expect(shortenName("abcdefghijklmnopqrstuvwxyz", 20)).toHaveLength(20);
  });
});

describe("runName", () => {
  it("is deterministic in the ticket id and shaped <repo>-<number>-<hash>", () => {
    expect(runName(ticket())).toBe(runName(ticket()));
    expect(runName(ticket())).toMatch(/^demo-7-[0-9a-f]{8}$/);
  });

  it("differs for another delivery of the same issue", () => {
    expect(runName(ticket({ id: "github:delivery-2" }))).not.toBe(runName(ticket()));
  });

  it("uses the work item when the source has no number", () => {
    expect(runName(ticket({ number: 0, workItem: "86C2ABCDEF99", id: "clickup:x" }))).toMatch(
      /^demo-86c2abcdef-[0-9a-f]{8}$/,
    );
  });

  it.each([
    ticket({ repo: "Acme/Very.Long_Repository-Name-With-Many-Parts" }),
    ticket({ repo: "o/---" }),
    ticket({ repo: "o/R", number: 123456789 }),
    ticket({ number: 0, workItem: "___", id: "dispatch:1" }),
    ticket({ number: 0, workItem: "a-very-long-work-item-id-indeed", id: "dispatch:2" }),
  ])("stays a DNS label of at most 40 characters: %j", (t) => {
    const name = runName(t);
    expect(name.length).toBeLessThanOrEqual(40);
    expect(name).toMatch(DNS_LABEL);
  });
});

describe("jobName", () => {
  it("is <run>-<stage>-<attempt>", () => {
    expect(jobName("demo-7-0123abcd", "remediate", 2)).toBe("demo-7-0123abcd-remediate-2");
  });

  it("fits 63 characters for the longest run names, distinct per stage and attempt", () => {
    const run = runName(ticket({ repo: `acme/${"r".repeat(60)}`, number: 9_999_999 }));
    const names = new Set<string>();
    for (const stage of ["triage", "write", "review", "remediate"])
      for (let attempt = 1; attempt <= 12; attempt++) {
        const name = jobName(run, stage, attempt);
        expect(name.length).toBeLessThanOrEqual(63);
        expect(name).toMatch(DNS_LABEL);
        names.add(name);
      }
    expect(names.size).toBe(48);
  });
});

describe("branchName", () => {
  it.each([
    [{ number: 7, workItem: "gh-7", title: "Add /healthz endpoint!" }, "agent/7-add-healthz-endpoint"],
    [{ number: 0, workItem: "86C2ABC", title: "Fix login" }, "agent/86c2abc-fix-login"],
    [{ number: 3, workItem: "gh-3", title: "日本語" }, "agent/3-change"],
    [{ number: 3, workItem: "gh-3", title: `${"word-".repeat(20)}` }, `agent/3-${"word-".repeat(8).slice(0, 39)}`],
  ])("%j → %s", (t, expected) => {
    expect(branchName(t)).toBe(expected);
  });

  it("is a valid git ref name", () => {
    const name = branchName({ number: 1, workItem: "gh-1", title: "..lock ~^:?*[ \\ @{" });
    expect(name).not.toMatch(/\.\.|[~^:?*[\\\s]|@\{|\.lock$|\/$|\.$/);
  });
});

describe("repoLabel", () => {
  it.each(["acme/demo", "Acme/Demo.JS", "a_b/c_d", `acme/${"x".repeat(80)}`])("is a valid label value: %s", (r) => {
    const label = repoLabel(r);
    expect(label.length).toBeLessThanOrEqual(63);
    expect(label).toMatch(LABEL_VALUE);
    expect(label).not.toBe("");
  });

  it("keeps owner and name apart", () => {
    expect(repoLabel("Acme/Demo.JS")).toBe("acme-demo-js");
  });
});

describe("FORGE_LABELS", () => {
  it("keeps the seed's label texts", () => {
    expect(FORGE_LABELS.trigger).toBe("ai-agent");
    expect(FORGE_LABELS.needsClarification).toBe("needs-clarification");
    expect(FORGE_LABELS.remediationRound(2)).toBe("remediation-round-2");
  });
});

import { describe, expect, it } from "vitest";
import { matchesFields, matchesLabels, parseSelector } from "./selectors.ts";

const pod = {
  metadata: { name: "p", namespace: "ns", labels: { app: "web", tier: "front" } },
  involvedObject: { uid: "u-1" },
  status: { phase: "Running" },
};

describe("label selectors", () => {
  it.each([
    ["app=web", true],
    ["app==web,tier=front", true],
    ["app!=web", false],
    ["app in (web, api)", true],
    ["app notin (web)", false],
    ["tier", true],
    ["!tier", false],
    ["missing!=x", true],
    ["app in (api),tier", false],
    ["", true],
  ])("%s → %s", (sel, want) => {
    expect(matchesLabels(parseSelector(sel), pod)).toBe(want);
  });
});

describe("field selectors", () => {
  it.each([
    ["metadata.name=p", true],
    ["metadata.namespace=other", false],
    ["involvedObject.uid=u-1,status.phase=Running", true],
    ["status.phase!=Running", false],
    ["spec.nodeName=", true],
  ])("%s → %s", (sel, want) => {
    expect(matchesFields(parseSelector(sel), pod)).toBe(want);
  });
});

import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeResult } from "../../core/result.ts";
import { SIGTERM_EXIT_CODE, terminationHandler } from "./terminate.ts";

function setup() {
  const file = join(mkdtempSync(join(tmpdir(), "af-term-")), "termination-log");
  const exits: number[] = [];
  const logs: string[] = [];
  const h = terminationHandler({
    terminationLog: file,
    stage: "write",
    model: "claude-sonnet-4-5",
    started: 1_000,
    now: () => 4_500,
    redact: (s) => s.replaceAll("ghs_secret", "[REDACTED]"),
    log: (msg) => logs.push(msg),
    exit: (code) => exits.push(code),
  });
  return { file, exits, logs, h };
}

describe("terminationHandler (SIGTERM of the runner, PID 1)", () => {
  it("writes a typed Terminated failure and exits 143", () => {
    const { file, exits, logs, h } = setup();
    h.onSignal("SIGTERM");
    const decoded = decodeResult(readFileSync(file, "utf8"));
    expect(decoded.ok && decoded.result).toMatchObject({
      stage: "write",
      outcome: "failed",
      failure: "Terminated",
      model: "claude-sonnet-4-5",
      summary: "terminated by SIGTERM before the stage finished",
      durationMs: 3_500,
    });
    expect(exits).toEqual([SIGTERM_EXIT_CODE]);
    expect(logs).toEqual(["stage terminated"]);
    // A second signal, or the stage finishing after it, does not overwrite the result.
    h.onSignal("SIGTERM");
    expect(h.finish(() => expect.unreachable("the stage result must not be written"))).toBe(SIGTERM_EXIT_CODE);
    expect(exits).toEqual([SIGTERM_EXIT_CODE]);
  });

  it("leaves a finished stage's own result alone", () => {
    const { file, exits, h } = setup();
    expect(h.finish(() => 0)).toBe(0);
    h.onSignal("SIGTERM");
    expect(() => readFileSync(file)).toThrow(/ENOENT/);
    expect(exits).toEqual([]);
  });
});

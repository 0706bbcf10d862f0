import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { detectTestCommand } from "./tests-command.ts";

let dir: string;
const make = (files: Record<string, string>) => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "af-detect-"));
  for (const [f, c] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), c);
  return dir;
};
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("detectTestCommand", () => {
  it.each([
    [{ "package.json": '{"scripts":{"test":"vitest run"}}' }, "npm test"],
    [{ "package.json": '{"scripts":{"test":"echo \\"Error: no test specified\\" && exit 1"}}' }, undefined],
    [{ "pyproject.toml": "[tool.pytest.ini_options]\n" }, "python -m pytest -q"],
    [{ "go.mod": "module x\n" }, "go test ./..."],
    [{ "Cargo.toml": "[package]\n" }, "cargo test"],
    [{ Makefile: "build:\n\ttrue\ntest:\n\ttrue\n" }, "make test"],
    [{ "README.md": "hi" }, undefined],
  ])("%j -> %s", (files, expected) => {
    expect(detectTestCommand(make(files))).toBe(expected);
  });
  it("runs the test script directly where npm is missing", () => {
    expect(
      detectTestCommand(make({ "package.json": '{"scripts":{"test":"node --test"}}' }), undefined, "/nonexistent"),
    ).toBe('PATH="$PWD/node_modules/.bin:$PATH" node --test');
  });
  it("prefers the configured command", () => {
    expect(detectTestCommand(make({ "go.mod": "" }), " make check ")).toBe("make check");
  });
});

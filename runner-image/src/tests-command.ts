import fs from "node:fs";
import path from "node:path";

/**
 * The repository's test command: the configured one, else detected from the files present.
 * Returns undefined when the repository has no recognisable test setup.
 */
export function detectTestCommand(
  workspace: string,
  configured?: string,
  pathEnv = process.env.PATH ?? "",
): string | undefined {
  if (configured?.trim()) return configured.trim();
  const has = (f: string) => fs.existsSync(path.join(workspace, f));
  const read = (f: string) => (has(f) ? fs.readFileSync(path.join(workspace, f), "utf8") : "");
  if (has("package.json")) {
    try {
      const test = (JSON.parse(read("package.json")) as { scripts?: Record<string, string> }).scripts?.test;
      if (test && !/no test specified/.test(test)) {
        if (onPath("npm", pathEnv)) return "npm test";
        // Images without npm: run the script the way npm would, with the local binaries first on PATH.
        return `PATH="$PWD/node_modules/.bin:$PATH" ${test}`;
      }
    } catch {
      // fall through to the other detectors
    }
  }
  if (
    has("pytest.ini") ||
    /pytest/.test(read("pyproject.toml")) ||
    /pytest/.test(read("setup.cfg")) ||
    has("tests/conftest.py")
  )
    return "python -m pytest -q";
  if (has("go.mod")) return "go test ./...";
  if (has("Cargo.toml")) return "cargo test";
  if (/^test:/m.test(read("Makefile"))) return "make test";
  return undefined;
}

function onPath(name: string, pathEnv: string): boolean {
  return pathEnv.split(":").some((dir) => dir && fs.existsSync(path.join(dir, name)));
}

import fs from "node:fs";
import path from "node:path";
import { ToolError } from "./types.ts";

/** Paths a tool never touches, even inside the workspace. */
const DENIED = [/(^|\/)\.git\/(config|credentials)$/, /(^|\/)\.git-credentials$/, /(^|\/)\.netrc$/];

/**
 * Resolves a tool's path argument inside the workspace, following symlinks, and refuses anything that
 * lands outside it (absolute paths elsewhere, `..`, links pointing out).
 */
export function resolveInWorkspace(workspace: string, file: string): string {
  if (!file) throw new ToolError("a path is required");
  const root = fs.realpathSync(workspace);
  const target = path.resolve(root, file.startsWith(workspace) ? path.relative(workspace, file) : file);
  const real = realpathOfExisting(target);
  const rel = path.relative(root, real);
  if (rel.startsWith("..") || path.isAbsolute(rel))
    throw new ToolError(`${file} is outside the workspace ${workspace}`);
  if (DENIED.some((p) => p.test(rel))) throw new ToolError(`${file} is not accessible to tools`);
  return real;
}

/**
 * {@link resolveInWorkspace} for tools that write: nothing under a `.git` directory (at any depth, in
 * the path as given or as resolved through links), nor a `.git` file. Git metadata is never the
 * agent's to edit: hooks, config and filters there are code that git runs.
 */
export function resolveForWrite(workspace: string, file: string): string {
  const real = resolveInWorkspace(workspace, file);
  const rel = path.relative(fs.realpathSync(workspace), real);
  const given = path.normalize(file);
  if ([rel, given].some((p) => p.split(/[\\/]+/).some((seg) => seg.toLowerCase() === ".git")))
    throw new ToolError(`${file} is inside .git: git metadata cannot be written with the file tools`);
  return real;
}

/** realpath of the longest existing prefix, with the rest appended (for files about to be created). */
function realpathOfExisting(target: string): string {
  let existing = target;
  const rest: string[] = [];
  while (!fs.existsSync(existing)) {
    rest.unshift(path.basename(existing));
    const parent = path.dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  return path.join(fs.realpathSync(existing), ...rest);
}

/** Workspace-relative display form of a path. */
export function display(workspace: string, file: string): string {
  const rel = path.relative(fs.realpathSync(workspace), file);
  return rel || ".";
}

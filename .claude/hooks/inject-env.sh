#!/usr/bin/env bash
# SessionStart: exports the test environment for the session's commands through CLAUDE_ENV_FILE.
# Values come from .claude/test.env (KEY=value lines, test-only values: never real credentials).
# (The AgentFactory runner itself already runs tools with CI=true.)
set -u
[ -n "${CLAUDE_ENV_FILE:-}" ] || exit 0
dir="${CLAUDE_PROJECT_DIR:-.}"
if [ -f "$dir/.claude/test.env" ]; then
  grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$dir/.claude/test.env" | sed 's/^/export /' >>"$CLAUDE_ENV_FILE"
fi
exit 0

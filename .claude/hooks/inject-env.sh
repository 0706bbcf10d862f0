#!/usr/bin/env bash
# SessionStart: exports the test environment for the session's commands through CLAUDE_ENV_FILE.
# Values come from .claude/test.env (KEY=value lines, test-only values: never real credentials),
# plus CI=true so tools behave non-interactively.
set -u
[ -n "${CLAUDE_ENV_FILE:-}" ] || exit 0
dir="${CLAUDE_PROJECT_DIR:-.}"
{
  echo "export CI=true"
  if [ -f "$dir/.claude/test.env" ]; then
    grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$dir/.claude/test.env" | sed 's/^/export /'
  fi
} >>"$CLAUDE_ENV_FILE"
exit 0

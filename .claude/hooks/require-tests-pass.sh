#!/usr/bin/env bash
# Stop: the session may not end while the tests fail. Exit 2 sends the failure back to the model.
# Bounded: after MAX_STOP_BLOCKS (default 3) blocked stops in one session it lets the session end,
# so a test it cannot fix never loops forever (Claude Code sets stop_hook_active on such retries).
# Test command: AGENTFACTORY_TEST_COMMAND, else the first line of .claude/test-command; without either
# the hook does nothing (inside the AgentFactory runner the image's own tests gate already runs them,
# with detection, so this hook steps aside there: AGENTFACTORY_RUNNER=1).
# No `set -e`: a failing test command must reach the exit-2 branch, not end the script with its own code.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
input="$(cat)"
[ "${AGENTFACTORY_RUNNER:-}" = "1" ] && exit 0
cd "$(project_dir)" || exit 0
session="$(json_field "$input" session_id)"
active="$(json_field "$input" stop_hook_active)"
counter="${TMPDIR:-/tmp}/require-tests-pass-${session:-none}"
[ "$active" = "true" ] || rm -f "$counter"

cmd="${AGENTFACTORY_TEST_COMMAND:-}"
[ -n "$cmd" ] || cmd="$(sed -n '1{s/#.*//;p;}' .claude/test-command 2>/dev/null)"
[ -n "${cmd// /}" ] || exit 0

output="$(bash -c "$cmd" 2>&1)"
status=$?
if [ "$status" -eq 0 ]; then
  rm -f "$counter"
  exit 0
fi
blocked="$(cat "$counter" 2>/dev/null || echo 0)"
if [ "$blocked" -ge "${MAX_STOP_BLOCKS:-3}" ]; then
  echo "Tests still fail after $blocked attempts; stopping anyway." >&2
  exit 0
fi
echo $((blocked + 1)) >"$counter"
{
  echo "The tests must pass before you finish. \`$cmd\` exited with $status:"
  printf '%s\n' "$output" | tail -n 80
} >&2
exit 2

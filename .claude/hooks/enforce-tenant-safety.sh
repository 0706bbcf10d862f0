#!/usr/bin/env bash
# PreToolUse (Bash): blocks destructive or unscoped commands before they run.
# 1. AgentFactory's safety gate when installed (`agentfactory-hook safety`: filesystem, git, databases,
#    curl|sh, secrets, pushes other than the agent branch).
# 2. Tenant scoping: SQL writes to the tables listed in .claude/tenant-tables.txt (one per line) must
#    mention the tenant column (TENANT_COLUMN, default tenant_id).
# Blocking is exit 2 with the reason on stderr (exit 1 would only warn).
set -u
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
input="$(cat)"
command="$(json_field "$input" tool_input.command)"
[ -n "$command" ] || exit 0

# Inside the AgentFactory runner the same gate already ran as a hard gate (AGENTFACTORY_RUNNER=1).
if [ "${AGENTFACTORY_RUNNER:-}" != "1" ] && command -v agentfactory-hook >/dev/null 2>&1; then
  printf '%s' "$input" | agentfactory-hook safety
  status=$?
  [ "$status" -eq 2 ] && exit 2
fi

# Without the gate binary, still refuse the most destructive statements.
if printf '%s' "$command" | grep -qiE 'drop[[:space:]]+(table|database|schema)|truncate[[:space:]]+table|rm[[:space:]]+-[a-z]*r[a-z]*f?[[:space:]]+(/|~)([[:space:]]|$)'; then
  echo "Blocked: destructive command. Write a migration or a scoped command instead." >&2
  exit 2
fi

tables="$(project_dir)/.claude/tenant-tables.txt"
column="${TENANT_COLUMN:-tenant_id}"
if [ -f "$tables" ]; then
  while IFS= read -r table; do
    table="${table%%#*}"
    table="$(printf '%s' "$table" | tr -d '[:space:]')"
    [ -n "$table" ] || continue
    if printf '%s' "$command" | grep -qiE "(delete[[:space:]]+from|update|insert[[:space:]]+into)[[:space:]]+[\"\`]?${table}[\"\`]?([[:space:]]|$)" &&
      ! printf '%s' "$command" | grep -qi "$column"; then
      echo "Blocked: a write to tenant table '$table' without '$column'. Scope it to one tenant." >&2
      exit 2
    fi
  done <"$tables"
fi
exit 0

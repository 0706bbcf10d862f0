#!/usr/bin/env bash
# PostToolUse (Edit|Write|MultiEdit): lints the file just changed and shows the problems to the model
# (exit 2: stderr reaches the model; a plain exit 0 with output would be invisible to it).
# Uses whichever linter the project has: biome or eslint (JS/TS), ruff (Python), gofmt (Go).
set -u
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
input="$(cat)"
file="$(json_field "$input" tool_input.file_path)"
[ -n "$file" ] && [ -f "$file" ] || exit 0
cd "$(project_dir)" || exit 0
bin() { [ -x "node_modules/.bin/$1" ] && echo "node_modules/.bin/$1" || command -v "$1" 2>/dev/null; }

output=""
case "$file" in
  *.ts | *.tsx | *.js | *.jsx | *.mjs | *.cjs)
    if [ -n "$(bin biome)" ] && [ -f biome.json -o -f biome.jsonc ]; then
      output="$("$(bin biome)" lint "$file" 2>&1)" || status=1
    elif [ -n "$(bin eslint)" ]; then
      output="$("$(bin eslint)" --no-warn-ignored "$file" 2>&1)" || status=1
    fi
    ;;
  *.py)
    if [ -n "$(bin ruff)" ]; then output="$("$(bin ruff)" check "$file" 2>&1)" || status=1; fi
    ;;
  *.go)
    if command -v gofmt >/dev/null 2>&1; then
      output="$(gofmt -l "$file" 2>&1)"
      [ -z "$output" ] || { output="gofmt would reformat: $output"; status=1; }
    fi
    ;;
esac
if [ "${status:-0}" -ne 0 ]; then
  printf 'Lint problems in %s (fix them):\n%s\n' "$file" "$(printf '%s' "$output" | head -n 60)" >&2
  exit 2
fi
exit 0

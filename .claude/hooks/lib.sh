# Shared helpers for the hooks (sourced). Claude Code sends the hook input as JSON on stdin.
# Exit codes: 0 allows; 2 blocks and stderr goes back to the model; anything else is a non-blocking error.

# json_field <json> <dotted.path>: prints a string field, empty when missing. Uses jq, python3 or node.
json_field() {
  if command -v jq >/dev/null 2>&1; then
    printf '%s' "$1" | jq -r --arg p "$2" 'getpath($p | split(".")) // empty | if type == "string" then . else tostring end' 2>/dev/null
  elif command -v python3 >/dev/null 2>&1; then
    printf '%s' "$1" | python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v=v.get(k) if isinstance(v,dict) else None
print("" if v is None else (v if isinstance(v,str) else json.dumps(v)),end="")' "$2" 2>/dev/null
  else
    printf '%s' "$1" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);for(const k of process.argv[1].split("."))v=v&&typeof v==="object"?v[k]:undefined;process.stdout.write(v==null?"":typeof v==="string"?v:JSON.stringify(v))})' "$2" 2>/dev/null
  fi
}

# The project root: Claude Code sets CLAUDE_PROJECT_DIR; fall back to the git top level.
project_dir() {
  printf '%s' "${CLAUDE_PROJECT_DIR:-$(git rev-parse --show-toplevel 2>/dev/null || pwd)}"
}

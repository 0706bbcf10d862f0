#!/usr/bin/env bash
# Builds the runner image with Podman (`make image`). Incremental:
#   1. base image localhost/agentfactory-base:bookworm-node24, built by base/build-base.sh (debootstrap,
#      ~1 min) only when missing or when its recipe changed (hash of runner-image/base/* and the Node
#      version, kept in the image label dev.agentfactory.base.recipe). FORCE_BASE=1 rebuilds it.
#   2. always: esbuild bundles runner-image/src/main.ts → runner-image/dist/runner.mjs (and the hook CLI),
#   3. always: podman build of runner-image/Dockerfile on that base (layer-cached, seconds).
#
# Environment: RUNNER_IMAGE (default localhost/agentfactory-runner:dev), BASE_IMAGE (use an existing base,
# e.g. node:24-bookworm-slim where it can be pulled: skips step 1), FORCE_BASE=1, DEBIAN_MIRROR.
#
# Podman here: `--runtime runc` (crun fails on these machines, see test/world/podman.ts). `podman build`
# needs no other flag: RUN steps work with the default isolation (OCI runtime = runc) and overlay storage,
# and the ulimits that `podman run` needs are not applied by build's RUN. The build runs with
# `--network none` on the local base: nothing in it downloads, and that proves it. `--pull=never` keeps
# podman from trying a registry for the local base.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$root/.cache/bin:$PATH"

runner_image="${RUNNER_IMAGE:-localhost/agentfactory-runner:dev}"
base_tag="localhost/agentfactory-base:bookworm-node24"
entry="${RUNNER_ENTRY:-runner-image/src/main.ts}"
podman=(podman --runtime runc)
started=$SECONDS
step() { echo "image: $* [$((SECONDS - started))s]"; }

command -v podman >/dev/null || { echo "image: podman missing: run make deps" >&2; exit 1; }
command -v esbuild >/dev/null || { echo "image: esbuild missing: run make deps (npm ci)" >&2; exit 1; }
[ -f "$entry" ] || { echo "image: $entry missing: nothing to bundle" >&2; exit 1; }

# Several checkouts and test runs on one machine share the image store and this tree's dist/: one
# build at a time.
exec 9>"${TMPDIR:-/tmp}/agentfactory-image.lock"
if ! flock -n 9; then
  step "waiting for another image build to finish"
  flock 9
fi

# 1. Base image.
if [ -n "${BASE_IMAGE:-}" ]; then
  base="$BASE_IMAGE"
  pull=(--pull=missing)
  network=()
  step "base: $base (given by BASE_IMAGE)"
else
  base="$base_tag"
  pull=(--pull=never)
  network=(--network none)
  recipe="$( (cat runner-image/base/*; node --version) | sha256sum | cut -c1-16)"
  current=""
  if "${podman[@]}" image exists "$base"; then
    current="$("${podman[@]}" image inspect --format '{{ index .Labels "dev.agentfactory.base.recipe" }}' "$base")"
  fi
  if [ "$current" = "$recipe" ] && [ -z "${FORCE_BASE:-}" ]; then
    step "base: $base up to date (recipe $recipe)"
  else
    step "base: building $base (recipe $recipe${current:+, was $current}); this takes a minute or two"
    runner-image/base/build-base.sh "$base" "$recipe"
    step "base: built"
  fi
fi

# 2. Bundle on the host: Node 24 ESM, one file, CommonJS dependencies given a `require`.
dist=runner-image/dist
rm -rf "$dist"
mkdir -p "$dist"
banner="import { createRequire as __agentfactoryCreateRequire } from 'node:module'; const require = __agentfactoryCreateRequire(import.meta.url);"
esbuild "$entry" --bundle --platform=node --format=esm --target=node24 --outfile="$dist/runner.mjs" \
  --banner:js="$banner" --sourcemap --sources-content=false --legal-comments=none --log-level=warning
# The safety gate's shell grammar (tree-sitter) is WebAssembly: its two modules sit beside the bundles,
# where runner-image/src/hooks/shell-parse.ts looks first.
cp node_modules/web-tree-sitter/web-tree-sitter.wasm node_modules/tree-sitter-bash/tree-sitter-bash.wasm "$dist/"
hook=runner-image/bin/agentfactory-hook
bundle_hook() {
  # esbuild reads it from stdin (an extension-less file gives it no loader to pick), resolving imports
  # from runner-image/bin; the file's own shebang is dropped for node's, put before the banner.
  sed '1{/^#!/d}' "$1" | (cd runner-image/bin && esbuild --bundle --loader=ts --sourcefile="$(basename "$1")" \
    --platform=node --format=esm --target=node24 --outfile="$root/$dist/agentfactory-hook" \
    --banner:js=$'#!/usr/bin/env node\n'"$banner" --legal-comments=none --log-level=warning)
}
if [ -f "$hook.ts" ]; then
  bundle_hook "$hook.ts"
elif [ -f "$hook" ] && head -n1 "$hook" | grep -q tsx; then
  bundle_hook "$hook" # TypeScript run by tsx on the host: bundled like the runner
elif [ -f "$hook" ]; then
  install -m 0644 "$hook" "$dist/agentfactory-hook"
else
  echo "image: warning: $hook missing; the image has no hook CLI" >&2
fi
[ ! -f "$dist/agentfactory-hook" ] || chmod 0755 "$dist/agentfactory-hook"
# The sandbox container's PID 1 (a bash script: reaps orphans, starts `runner.mjs sandbox`).
install -m 0755 runner-image/bin/agentfactory-init "$dist/agentfactory-init"
step "bundle: $(du -sh "$dist" | cut -f1) in $dist ($(cd "$dist" && ls | paste -sd' ' -))"

# 3. Runner image.
log="$(mktemp)"
if ! "${podman[@]}" build "${pull[@]}" "${network[@]}" --build-arg "BASE_IMAGE=$base" \
  -f runner-image/Dockerfile -t "$runner_image" runner-image >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  rm -f "$log"
  echo "image: podman build failed" >&2
  exit 1
fi
cached="$(grep -c -- '--> Using cache' "$log" || true)"
steps="$(grep -c 'STEP [0-9]' "$log" || true)"
rm -f "$log"
id="$("${podman[@]}" image inspect --format '{{.Id}}' "$runner_image")"
step "podman build: $steps steps, $cached from cache"
# The image store persists on the machine: drop this build's leftovers (the replaced runner and base
# images, stage images no tag refers to), which all carry the label dev.agentfactory.image.
"${podman[@]}" image prune -f --filter label=dev.agentfactory.image >/dev/null 2>&1 || true
size="$("${podman[@]}" image inspect --format '{{.Size}}' "$runner_image")"
step "built $runner_image ${id:0:12} ($((size / 1000000)) MB)"

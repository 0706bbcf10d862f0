#!/usr/bin/env bash
# Builds the images `make e2e-kind` loads into kind:
#   control plane  $CONTROL_PLANE_IMAGE (default localhost/agentfactory:e2e)   control-plane.Dockerfile
#   test world     $WORLD_IMAGE         (default localhost/agentfactory-world:e2e) world.Dockerfile
#   runner         $RUNNER_IMAGE        (default localhost/agentfactory-runner:e2e) runner-image/Dockerfile
# Node code is bundled on the host with esbuild (like runner-image/build.sh does for the runner), so
# the image builds copy one file per process and need no npm.
#
# Usage: build-images.sh [--bundle-only]   (--bundle-only: write test/e2e-kind/dist and stop; tests use it)
# Environment: ENGINE (docker|podman, default: docker when present), BASE_IMAGE (default
# node:24-bookworm-slim), DIST (default test/e2e-kind/dist).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$root/.cache/bin:$PATH"

control_plane_image="${CONTROL_PLANE_IMAGE:-localhost/agentfactory:e2e}"
world_image="${WORLD_IMAGE:-localhost/agentfactory-world:e2e}"
runner_image="${RUNNER_IMAGE:-localhost/agentfactory-runner:e2e}"
base_image="${BASE_IMAGE:-node:24-bookworm-slim}"
dist="${DIST:-$here/dist}"

command -v esbuild >/dev/null || { echo "build-images: esbuild missing: run npm ci (or make deps)" >&2; exit 1; }

# Node 24 ESM, one file per process; CommonJS dependencies get a `require`.
banner="import { createRequire as __agentfactoryCreateRequire } from 'node:module'; const require = __agentfactoryCreateRequire(import.meta.url);"
bundle() {
  esbuild "$1" --bundle --platform=node --format=esm --target=node24 --outfile="$2" \
    --banner:js="$banner" --sourcemap --sources-content=false --legal-comments=none --log-level=warning
}
rm -rf "$dist"
mkdir -p "$dist/control-plane" "$dist/world"
bundle operator/main.ts "$dist/control-plane/operator.mjs"
bundle gateway/main.ts "$dist/control-plane/gateway.mjs"
bundle egress/main.ts "$dist/control-plane/egress.mjs"
bundle operator/patterns-job.ts "$dist/control-plane/patterns-job.mjs"
bundle test/e2e-kind/world.ts "$dist/world/world.mjs"
echo "build-images: bundled $(cd "$dist" && find . -name '*.mjs' | sort | paste -sd' ' -)"
[ "${1:-}" = "--bundle-only" ] && exit 0

engine="${ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker
  elif command -v podman >/dev/null; then engine=podman
  else echo "build-images: neither a Docker engine nor podman is available" >&2; exit 1; fi
fi
build=("$engine")
[ "$engine" = podman ] && build+=(--runtime runc)

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -r "$dist" "$stage/dist"
"${build[@]}" build --build-arg "BASE_IMAGE=$base_image" -f "$here/control-plane.Dockerfile" -t "$control_plane_image" "$stage"
"${build[@]}" build --build-arg "BASE_IMAGE=$base_image" -f "$here/world.Dockerfile" -t "$world_image" "$stage"

# The runner: runner-image/build.sh bundles it and builds with podman; with Docker only, bundle the
# same way (build.sh's step 2, invoked through its own entry) and build runner-image/Dockerfile.
if [ "$engine" = podman ]; then
  RUNNER_IMAGE="$runner_image" BASE_IMAGE="$base_image" runner-image/build.sh
else
  rm -rf runner-image/dist && mkdir -p runner-image/dist
  bundle runner-image/src/main.ts runner-image/dist/runner.mjs
  for hook in runner-image/bin/agentfactory-hook.ts runner-image/bin/agentfactory-hook; do
    if [ -f "$hook" ]; then
      sed '1{/^#!/d}' "$hook" | (cd runner-image/bin && esbuild --bundle --loader=ts --sourcefile="$(basename "$hook")" \
        --platform=node --format=esm --target=node24 --outfile="$root/runner-image/dist/agentfactory-hook" \
        --banner:js=$'#!/usr/bin/env node\n'"$banner" --legal-comments=none --log-level=warning)
      chmod 0755 runner-image/dist/agentfactory-hook
      break
    fi
  done
  docker build --build-arg "BASE_IMAGE=$base_image" -f runner-image/Dockerfile -t "$runner_image" runner-image
fi
echo "build-images: $control_plane_image $world_image $runner_image"

#!/usr/bin/env bash
# `make e2e-kind`: the end-to-end suite against a real Kubernetes (kind) instead of the simulated one.
#   1. create a kind cluster (kind-config.yaml; kind >= 0.24 so NetworkPolicies are enforced)
#   2. build the control-plane, test-world and runner images (build-images.sh) and load them
#   3. start the test world (world.yaml: GitHub + Anthropic simulators) and create the Secrets from it
#   4. helm install charts/agentfactory with values.yaml into a namespace enforcing Pod Security "restricted"
#   5. port-forward the gateway, the operator's metrics and the world's control API, then run the suite
#      (kind.test.ts, plus $E2E_SUITE when set) with their URLs in the environment
#   6. on failure, dump pods, events, AgentRuns, Jobs and every container's logs into $ARTIFACTS
# Needs Docker (or podman), kind, and `make deps` (node_modules, .cache/bin/{helm,kubectl}).
# Environment: KEEP_CLUSTER=1 keeps the cluster afterwards; REUSE_CLUSTER=1 uses an existing one;
# SKIP_BUILD=1 loads images built before; ARTIFACTS (default .cache/e2e-kind); E2E_SUITE (extra test paths).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$root/.cache/bin:$PATH"

cluster="${KIND_CLUSTER:-agentfactory-e2e}"
ns=agentfactory
world_ns=agentfactory-world
release=agentfactory
artifacts="${ARTIFACTS:-$root/.cache/e2e-kind}"
kubeconfig="$artifacts/kubeconfig"
export CONTROL_PLANE_IMAGE=localhost/agentfactory:e2e WORLD_IMAGE=localhost/agentfactory-world:e2e \
  RUNNER_IMAGE=localhost/agentfactory-runner:e2e
helm=("$root/.cache/bin/helm" --kubeconfig "$kubeconfig")
kubectl=("$root/.cache/bin/kubectl" --kubeconfig "$kubeconfig")
started=$SECONDS
step() { echo "e2e-kind: $* [$((SECONDS - started))s]"; }
fail() { echo "e2e-kind: $*" >&2; exit 1; }

# --- preflight ---------------------------------------------------------------------------------
command -v kind >/dev/null || fail "kind missing: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
kind_version="$(kind version | sed -E 's/^kind v([0-9]+\.[0-9]+).*/\1/')"
[ "$(printf '%s\n0.24\n' "$kind_version" | sort -V | head -1)" = "0.24" ] ||
  fail "kind $kind_version is too old: 0.24 or later enforces NetworkPolicies"
[ -x .cache/bin/helm ] && [ -x .cache/bin/kubectl ] && [ -x node_modules/.bin/vitest ] ||
  fail "helm, kubectl or node_modules missing: run make deps"
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker
elif command -v podman >/dev/null; then engine=podman; export KIND_EXPERIMENTAL_PROVIDER=podman
else fail "no Docker engine (or podman) available"; fi
mkdir -p "$artifacts"

pids="$artifacts/port-forward.pids"
: >"$pids"
cleanup() {
  local rc=$?
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$pids"
  if [ "$rc" -ne 0 ]; then dump_logs || true; fi
  if [ -z "${KEEP_CLUSTER:-}" ] && [ -z "${REUSE_CLUSTER:-}" ]; then
    kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
  fi
  [ "$rc" -eq 0 ] && step "passed" || echo "e2e-kind: FAILED (rc=$rc); logs in $artifacts" >&2
  exit "$rc"
}
dump_logs() {
  step "dumping cluster state into $artifacts"
  local out="$artifacts/state"
  mkdir -p "$out/logs"
  for n in "$ns" "$world_ns"; do
    "${kubectl[@]}" -n "$n" get all,agentruns,jobs,secrets,networkpolicies,leases -o wide >"$out/$n-get.txt" 2>&1 || true
    "${kubectl[@]}" -n "$n" get events --sort-by=.lastTimestamp >"$out/$n-events.txt" 2>&1 || true
    "${kubectl[@]}" -n "$n" describe pods >"$out/$n-pods.txt" 2>&1 || true
    for pod in $("${kubectl[@]}" -n "$n" get pods -o name 2>/dev/null); do
      "${kubectl[@]}" -n "$n" logs "$pod" --all-containers --prefix --timestamps \
        >"$out/logs/$n-${pod#pod/}.log" 2>&1 || true
      "${kubectl[@]}" -n "$n" logs "$pod" --all-containers --previous \
        >"$out/logs/$n-${pod#pod/}.previous.log" 2>/dev/null || rm -f "$out/logs/$n-${pod#pod/}.previous.log"
    done
  done
  "${kubectl[@]}" -n "$ns" get agentruns -o yaml >"$out/agentruns.yaml" 2>&1 || true
  kind export logs "$artifacts/kind" --name "$cluster" >/dev/null 2>&1 || true
  # The operator and gateway logs are what usually explains a failure: show their tails.
  for f in "$out"/logs/"$ns"-*operator*.log "$out"/logs/"$ns"-*gateway*.log; do
    [ -f "$f" ] && { echo "--- $(basename "$f") (last 40 lines)"; tail -n 40 "$f"; }
  done
}
trap cleanup EXIT

# --- 1. cluster --------------------------------------------------------------------------------
if [ -n "${REUSE_CLUSTER:-}" ] && kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  step "reusing cluster $cluster"
else
  kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
  step "creating cluster $cluster"
  kind create cluster --name "$cluster" --config "$here/kind-config.yaml" --wait 120s
fi
kind get kubeconfig --name "$cluster" >"$kubeconfig"

# --- 2. images ---------------------------------------------------------------------------------
if [ -z "${SKIP_BUILD:-}" ]; then
  step "building images ($engine)"
  ENGINE="$engine" "$here/build-images.sh"
fi
for image in "$CONTROL_PLANE_IMAGE" "$WORLD_IMAGE" "$RUNNER_IMAGE"; do
  step "loading $image"
  if [ "$engine" = docker ]; then
    kind load docker-image "$image" --name "$cluster"
  else
    archive="$artifacts/image.tar"
    podman save --format docker-archive -o "$archive" "$image"
    kind load image-archive "$archive" --name "$cluster"
    rm -f "$archive"
  fi
done

# --- 3. test world and Secrets -------------------------------------------------------------------
step "starting the test world"
"${kubectl[@]}" apply -f "$here/world.yaml"
"${kubectl[@]}" -n "$world_ns" rollout status deploy/world --timeout=180s

# port_forward <namespace> <resource> <remote port> → prints the local port once it accepts connections
port_forward() {
  local log="$artifacts/port-forward-$2-$3.log" port
  "${kubectl[@]}" -n "$1" port-forward "$2" ":$3" --address 127.0.0.1 >"$log" 2>&1 &
  echo "$!" >>"$pids"
  for _ in $(seq 1 100); do
    port="$(sed -nE 's/^Forwarding from 127\.0\.0\.1:([0-9]+) .*/\1/p' "$log" | head -1)"
    [ -n "$port" ] && { echo "$port"; return 0; }
    sleep 0.2
  done
  cat "$log" >&2
  return 1
}
world_port="$(port_forward "$world_ns" deploy/world 8090)"
export E2E_WORLD_URL="http://127.0.0.1:$world_port"
info="$(curl -fsS "$E2E_WORLD_URL/info")"
field() { node -e 'const v = JSON.parse(process.argv[1]).github[process.argv[2]]; process.stdout.write(String(v));' "$info" "$1"; }

"${kubectl[@]}" create namespace "$ns" --dry-run=client -o yaml | "${kubectl[@]}" apply -f -
"${kubectl[@]}" label namespace "$ns" --overwrite \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted
secret() { "${kubectl[@]}" -n "$ns" create secret generic "$@" --dry-run=client -o yaml | "${kubectl[@]}" apply -f -; }
webhook_secret="e2e-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
dispatch_token="e2e-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
key_file="$artifacts/app.pem"
field privateKeyPem >"$key_file"
secret agentfactory-github-app --from-literal=app-id="$(field appId)" --from-file=private-key.pem="$key_file"
rm -f "$key_file"
secret agentfactory-model --from-literal=anthropic-api-key=sk-ant-e2e
secret agentfactory-webhooks --from-literal=github-webhook-secret="$webhook_secret" \
  --from-literal=dispatch-token="$dispatch_token"

# --- 4. the chart --------------------------------------------------------------------------------
step "installing the chart"
"${helm[@]}" upgrade --install "$release" charts/agentfactory --namespace "$ns" \
  --values "$here/values.yaml" --set-string "github.installationId=$(field installationId)" \
  --wait --timeout 5m
"${kubectl[@]}" -n "$ns" get pods -o wide

# --- 5. the suite --------------------------------------------------------------------------------
gateway_port="$(port_forward "$ns" "svc/$release-gateway" 80)"
metrics_port="$(port_forward "$ns" "svc/$release-operator-metrics" 8080)"
export KUBECONFIG="$kubeconfig" E2E_TARGET=kind E2E_NAMESPACE="$ns" E2E_RELEASE="$release" \
  E2E_GATEWAY_URL="http://127.0.0.1:$gateway_port" \
  E2E_OPERATOR_METRICS_URL="http://127.0.0.1:$metrics_port/metrics" \
  E2E_GATEWAY_METRICS_URL="http://127.0.0.1:$gateway_port/metrics" \
  E2E_GITHUB_WEBHOOK_SECRET="$webhook_secret" E2E_DISPATCH_TOKEN="$dispatch_token" \
  E2E_KUBECTL="$root/.cache/bin/kubectl" E2E_HELM="$root/.cache/bin/helm"
step "running the end-to-end suite"
# shellcheck disable=SC2086 # E2E_SUITE is a list of paths
vitest run --config "$here/vitest.config.ts" ${E2E_SUITE:-}

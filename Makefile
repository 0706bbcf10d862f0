# AgentFactory. `make demo` runs the main job in the local test world; `make test` runs the tests.
# Both install what they need first (Debian packages, npm dependencies with Node 24, kubectl/helm).
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/.cache/bin:$(PATH)
VITEST_REPORT ?= .cache/vitest-report.json

.PHONY: deps image test unit typecheck lint demo e2e-kind clean bench-gateway bench-operator bench-cost bench-redact bench-dedupe bench-egress chart-files

deps:
	@.ci/install-deps

## The runner image, built by Podman (base image from debootstrap when node:24 cannot be pulled).
image: deps
	@runner-image/build.sh

typecheck: deps
	tsc --noEmit -p tsconfig.json

lint: deps
	biome check .

test: deps image typecheck lint
	vitest run --reporter=default --reporter=json --outputFile.json=$(VITEST_REPORT)

## Only the tests that need no image (fast inner loop).
unit: deps
	KUBELET_MODE=process vitest run

demo: deps image
	tsx test/demo.ts

## Benchmarks (bench/): each prints its figures and ends with a `result: key=value …` line.
bench-gateway: deps
	tsx bench/gateway.ts

bench-operator: deps
	tsx bench/operator.ts

bench-cost: deps
	tsx bench/cost.ts

bench-dedupe: deps
	tsx bench/dedupe-window.ts

bench-redact: deps
	tsx bench/redact.ts

## Chart files generated from core/ (test/chart checks they are current).
chart-files:
	node --import tsx -e 'import("./core/nats-auth.ts").then((m) => process.stdout.write(m.natsAuthorizationConf()))' \
		> charts/agentfactory/files/nats/authorization.conf

bench-egress: deps
	tsx bench/egress.ts

e2e-kind:
	test/e2e-kind/run.sh

clean:
	rm -rf .cache dist

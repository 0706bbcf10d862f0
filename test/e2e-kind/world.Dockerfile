# syntax=docker/dockerfile:1
# The test world for `make e2e-kind`: the GitHub (GHES-shaped, real git http-backend) and Anthropic
# simulators from test/world, bundled into world.mjs by build-images.sh. Test-only; never shipped.
ARG BASE_IMAGE=node:24-bookworm-slim
FROM ${BASE_IMAGE}
RUN set -eu; \
    if ! command -v git >/dev/null 2>&1; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git ca-certificates; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    git --version
COPY dist/world/ /opt/world/
RUN node --check /opt/world/world.mjs
ENV NODE_OPTIONS=--enable-source-maps HOME=/tmp
USER 65532:65532
CMD ["node", "/opt/world/world.mjs"]

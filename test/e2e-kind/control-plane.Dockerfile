# syntax=docker/dockerfile:1
# The control-plane image (ghcr.io/agentfactory/agentfactory): the operator, the gateway and the egress
# gateway, one image, three entrypoints chosen by the chart's `command`
# (node /opt/agentfactory/{operator,gateway,egress}.mjs). All are bundled on the host by build-images.sh
# (esbuild, every dependency inlined), so this build needs no npm; git (for the egress gateway) comes
# from Debian when the base image lacks it. Non-root numeric user for Pod Security
# "restricted"; the chart mounts a read-only root filesystem with an emptyDir on /tmp.
ARG BASE_IMAGE=node:24-bookworm-slim
FROM ${BASE_IMAGE}
LABEL dev.agentfactory.image=control-plane
# The egress gateway reads pushes with git (egress/push-inspect.ts).
RUN set -eu; \
    if ! command -v git >/dev/null 2>&1; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git ca-certificates; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    git --version
COPY dist/control-plane/ /opt/agentfactory/
RUN node --version | grep -q '^v24\.' \
 && node --check /opt/agentfactory/operator.mjs \
 && node --check /opt/agentfactory/gateway.mjs \
 && node --check /opt/agentfactory/egress.mjs \
 && chmod -R a+rX,go-w /opt/agentfactory
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
LABEL org.opencontainers.image.title="agentfactory" \
      org.opencontainers.image.description="AgentFactory operator and gateway" \
      org.opencontainers.image.licenses="MIT"
WORKDIR /opt/agentfactory
USER 65532:65532
CMD ["node", "/opt/agentfactory/operator.mjs"]

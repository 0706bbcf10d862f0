#!/usr/bin/env bash
# Builds the runner's base image without pulling anything: Debian bookworm (debootstrap, variant
# minbase, plus ./packages and the bookworm security updates) with the project's own Node 24 binary at
# /usr/local/bin/node, laid out like the public node:24-bookworm-slim so the Dockerfile works on both.
#
#   runner-image/base/build-base.sh <image-tag> <recipe-hash>
#
# Needs root (debootstrap, chroot) and Debian's package mirror (DEBIAN_MIRROR, default deb.debian.org).
# The image is labelled with the recipe hash so build.sh can tell a stale base from a current one.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tag="${1:?usage: build-base.sh <image-tag> <recipe-hash>}"
recipe="${2:?usage: build-base.sh <image-tag> <recipe-hash>}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
node_bin="$root/node_modules/node/bin/node"
podman=(podman --runtime runc)

[ "$(id -u)" -eq 0 ] || { echo "build-base: debootstrap needs root (run as root or via sudo)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build-base: debootstrap missing: run make deps" >&2; exit 1; }
[ -x "$node_bin" ] || { echo "build-base: $node_bin missing: run make deps (npm ci)" >&2; exit 1; }
node_version="$("$node_bin" --version)"
case "$node_version" in v24.*) ;; *) echo "build-base: expected Node 24, found $node_version" >&2; exit 1 ;; esac

rootfs="$(mktemp -d "${TMPDIR:-/var/tmp}/agentfactory-base.XXXXXX")"
cleanup() {
  if mountpoint -q "$rootfs/proc"; then umount "$rootfs/proc"; fi
  rm -rf --one-file-system "$rootfs" "$rootfs.log"
}
trap cleanup EXIT

include="$(grep -v '^#' "$here/packages" | grep -v '^[[:space:]]*$' | paste -sd, -)"
echo "build-base: debootstrap bookworm minbase + $include"
debootstrap --variant=minbase --include="$include" bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
  { tail -20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"

echo "build-base: security and point-release updates"
cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
SOURCES
# Package scripts may want /proc; mount it only for the upgrade.
mount -t proc proc "$rootfs/proc"
upgrade_status=0
# APT::Sandbox::User=root: the chroot's _apt user cannot read the download dirs debootstrap left.
DEBIAN_FRONTEND=noninteractive chroot "$rootfs" sh -c 'apt-get -o APT::Sandbox::User=root update -qq &&
  apt-get -o APT::Sandbox::User=root upgrade -y -qq --no-install-recommends && apt-get clean' \
  >"$rootfs.log" 2>&1 || upgrade_status=$?
umount "$rootfs/proc"
[ "$upgrade_status" -eq 0 ] || { tail -20 "$rootfs.log" >&2; rm -f "$rootfs.log"; echo "build-base: apt-get upgrade failed" >&2; exit 1; }
rm -f "$rootfs.log"

echo "build-base: slimming (apt lists, docs except copyright, man pages, locales, logs)"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
  "$rootfs"/var/log/* "$rootfs"/dev/* "$rootfs"/run/* "$rootfs"/tmp/* "$rootfs"/root/.cache
find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
# The host's resolver and hostname must not end up in the image: the runtime provides its own.
rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"

echo "build-base: node $node_version → /usr/local/bin/node"
install -m 0711 "$node_bin" "$rootfs/usr/local/bin/node"  # execute-only: see the Dockerfile

# npm and npx as in node:24-bookworm-slim (repositories' tests are often `npm test`); taken from the
# npm that runs this build, since nothing can be downloaded into the image.
npm_cli="$(readlink -f "$(command -v npm)")"
npm_dir="$(dirname "$(dirname "$npm_cli")")"
[ -f "$npm_dir/bin/npm-cli.js" ] || { echo "build-base: npm not found at $npm_dir" >&2; exit 1; }
echo "build-base: npm $(node "$npm_dir/bin/npm-cli.js" --version 2>/dev/null || echo '?') → /usr/local/lib/node_modules/npm"
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

echo "build-base: podman import → $tag"
tar -C "$rootfs" --numeric-owner -cf - . | "${podman[@]}" import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV NODE_VERSION=${node_version#v}" \
  --change 'CMD ["node"]' \
  --change "LABEL dev.agentfactory.base.recipe=$recipe" \
  --change "LABEL dev.agentfactory.image=base" \
  --change "LABEL org.opencontainers.image.description=Debian bookworm minbase with Node $node_version, git and ripgrep" \
  --quiet --message "agentfactory base $recipe" - "$tag" >/dev/null

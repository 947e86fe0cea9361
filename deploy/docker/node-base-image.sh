#!/usr/bin/env bash
# Builds a stand-in for the node:20-bookworm-slim base image on a machine
# that cannot reach Docker Hub but reaches Debian's mirror and the npm
# registry (as the project machines do): Debian bookworm (debootstrap
# --variant=minbase) plus this machine's own Node.js 20 (binary, headers for
# node-gyp, npm) and its CA bundle (an intercepting egress proxy's CA, if any,
# so that npm inside the build trusts it). Then:
#
#   docker build --network host --build-arg NODE_IMAGE=bkv-local/node:20-bookworm-slim \
#     -f deploy/Dockerfile -t bkv:dev .
#
#   deploy/docker/node-base-image.sh [TAG]     (root; needs debootstrap and a Docker engine)
set -euo pipefail
tag=${1:-bkv-local/node:20-bookworm-slim}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
node_bin=$(readlink -f "$(command -v node)")
if [[ $("$node_bin" -p 'process.versions.node.split(".")[0]') != 20 ]]; then
  echo "node-base-image: needs Node.js 20 on PATH" >&2
  exit 1
fi
prefix=$(dirname "$(dirname "$node_bin")") # /usr or /usr/local
for need in "$prefix/lib/node_modules/npm" "$prefix/include/node/node.h"; do
  [[ -e $need ]] || { echo "node-base-image: $need not found" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tail -n 20 "$work/debootstrap.log" >&2
  exit 1
fi
install -D -m 0755 "$node_bin" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules" "$root/usr/local/include" "$root/usr/local/share/ca-certificates"
cp -a "$prefix/lib/node_modules/npm" "$root/usr/local/lib/node_modules/"
cp -a "$prefix/include/node" "$root/usr/local/include/"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/host-ca-bundle.crt"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/host-ca-bundle.crt' \
  --change 'ENV npm_config_cafile=/usr/local/share/host-ca-bundle.crt' \
  --change 'ENV npm_config_nodedir=/usr/local' \
  --change 'CMD ["node"]' \
  - "$tag" >/dev/null
echo "$tag"

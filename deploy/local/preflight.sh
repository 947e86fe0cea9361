#!/usr/bin/env bash
# Checks that this machine has what bkv's tests and local cluster need, and
# says exactly what to run when something is missing. With --install (or as
# root with BKV_AUTO_INSTALL=1) it installs the missing Debian packages itself.
set -euo pipefail

missing=()
command -v softhsm2-util >/dev/null || missing+=(softhsm2)
[ -e /usr/lib/softhsm/libsofthsm2.so ] || [ -n "${BKV_HSM_MODULE:-}" ] || missing+=(softhsm2)
command -v openssl >/dev/null || missing+=(openssl)

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "bkv needs Node.js 20 or newer (found $(node --version))." >&2
  exit 1
fi

# npm dependencies (a fresh clone): install them from the lockfile.
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ ! -x "$root/node_modules/.bin/tsx" ]; then
  echo "preflight: installing npm dependencies (npm ci)" >&2
  (cd "$root" && npm ci --no-audit --no-fund) || { echo "npm ci failed: run 'npm install' in $root" >&2; exit 1; }
fi

[ ${#missing[@]} -eq 0 ] && exit 0
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "${1:-}" = "--install" ] || { [ "$(id -u)" = 0 ] && [ "${BKV_AUTO_INSTALL:-}" = 1 ]; }; then
  echo "preflight: installing $pkgs" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $pkgs >/dev/null
  exit 0
fi
echo "bkv needs these Debian packages: $pkgs" >&2
echo "Install them with:  sudo apt-get install -y $pkgs" >&2
echo "(or run: bash deploy/local/preflight.sh --install)" >&2
exit 1

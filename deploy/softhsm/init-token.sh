#!/usr/bin/env bash
# Creates (or keeps) one SoftHSM token for one bkv node in its own directory.
#
#   deploy/softhsm/init-token.sh DIR LABEL
#
# Result:
#   DIR/softhsm2.conf   directories.tokendir = DIR/tokens, file backend,
#                       log.level = ERROR; point SOFTHSM2_CONF at it
#   DIR/tokens/         the token store (one token per node)
#   DIR/pin, DIR/so-pin random user and SO PINs, mode 0600, never printed
#
# Idempotent: when DIR already holds a token labelled LABEL it is kept, and so
# are the PIN files. The PIN file is the source of truth for the node (pinFile
# in node/hsm config).
#
# LOCAL / DEV ONLY: softhsm2-util accepts PINs only as command-line arguments,
# so during --init-token the PINs are briefly visible to other local users in
# the process table (/proc/*/cmdline). Acceptable for a dev machine, a test
# run or an init container that runs alone; for a production HSM, initialize
# the token with the vendor's tooling and hand the node only the PIN file.
set -euo pipefail
umask 077

if [ $# -ne 2 ] || [ -z "$1" ] || [ -z "$2" ]; then
  echo "usage: $0 DIR LABEL" >&2
  exit 2
fi
dir=$1
label=$2
if [ ${#label} -gt 32 ]; then
  echo "init-token: label must be at most 32 characters" >&2
  exit 2
fi
command -v softhsm2-util >/dev/null || {
  echo "init-token: softhsm2-util not found (sudo apt-get install -y softhsm2)" >&2
  exit 1
}

mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
conf="$dir/softhsm2.conf"
cat >"$conf.tmp" <<CONF
# Written by deploy/softhsm/init-token.sh: the token store of one bkv node.
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
mv "$conf.tmp" "$conf"
export SOFTHSM2_CONF="$conf"

# new_pin FILE: writes a random 32-hex-digit PIN to FILE unless it exists.
new_pin() {
  if [ ! -s "$1" ]; then
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$1.tmp"
    chmod 600 "$1.tmp"
    mv "$1.tmp" "$1"
  fi
  chmod 600 "$1"
}

# has_token: true when a token labelled $label is initialized in this store.
has_token() {
  softhsm2-util --show-slots 2>/dev/null \
    | sed -n 's/^[[:space:]]*Label:[[:space:]]*//p' \
    | sed 's/[[:space:]]*$//' \
    | grep -Fxq -- "$label"
}

if has_token; then
  if [ ! -s "$dir/pin" ]; then
    echo "init-token: token '$label' exists in $dir but $dir/pin is missing" >&2
    exit 1
  fi
  echo "init-token: token '$label' already present in $dir/tokens (kept)"
  exit 0
fi

new_pin "$dir/so-pin"
new_pin "$dir/pin"
softhsm2-util --init-token --free --label "$label" \
  --so-pin "$(cat "$dir/so-pin")" --pin "$(cat "$dir/pin")" >/dev/null
has_token || { echo "init-token: token '$label' was not created" >&2; exit 1; }
echo "init-token: created token '$label' in $dir/tokens"

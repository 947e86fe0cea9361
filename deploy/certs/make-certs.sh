#!/usr/bin/env bash
# Makes a development cluster CA and one mTLS certificate per node.
#
#   deploy/certs/make-certs.sh OUTDIR NODE_ID|operator[-NAME]...
#
# Writes OUTDIR/ca.crt, OUTDIR/ca.key and, per node id N, OUTDIR/node-N.crt
# and OUTDIR/node-N.key (EC P-256, valid 825 days). An argument "operator" or
# "operator-NAME" writes OUTDIR/operator[-NAME].crt and .key instead: an
# operator's client certificate for `bkv admin` (CN=operator[-NAME], clientAuth
# only, no server names: it cannot serve as a node, and the admin port admits
# it, see node/server/admin-auth.ts). Each node certificate has
# CN=node-N and subjectAltName DNS:node-N, DNS:localhost, IP:127.0.0.1 plus
# any names in $EXTRA_SANS (e.g. "DNS:bkv-0.bkv,IP:10.0.0.5"); it is valid for
# both serverAuth and clientAuth, because a node is both. Peers check that the
# name node-N is in the certificate of the node they dial as N, and a server
# checks that the CN of a caller's certificate matches the node it claims.
#
# Idempotent: an existing CA or node certificate is kept. Keys are mode 0600.
# For development and tests only: production CAs live outside the cluster.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 OUTDIR NODE_ID|operator[-NAME]..." >&2
  exit 2
fi
out=$1
shift
for id in "$@"; do
  if ! [[ $id =~ ^[1-9][0-9]{0,15}$ || $id =~ ^operator(-[A-Za-z0-9._-]{1,64})?$ ]]; then
    echo "make-certs: expected a node id (a positive integer) or operator[-NAME], got '$id'" >&2
    exit 2
  fi
done

mkdir -p "$out"
umask 077
days=825
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ ! -s $out/ca.crt || ! -s $out/ca.key ]]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$out/ca.key" -out "$out/ca.crt" -days "$days" -sha256 \
    -subj "/O=bkv/CN=bkv cluster CA $(openssl rand -hex 4)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

for id in "$@"; do
  ext=$tmp/$id.ext
  if [[ $id == operator* ]]; then
    name=$id
    printf '%s\n' \
      "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=clientAuth" >"$ext"
  else
    name="node-$id"
    sans="DNS:$name,DNS:localhost,IP:127.0.0.1${EXTRA_SANS:+,$EXTRA_SANS}"
    printf '%s\n' \
      "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth,clientAuth" \
      "subjectAltName=$sans" >"$ext"
  fi
  [[ -s $out/$name.crt && -s $out/$name.key ]] && continue
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$out/$name.key" -out "$tmp/$name.csr" -subj "/O=bkv/CN=$name" 2>/dev/null
  openssl x509 -req -in "$tmp/$name.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
    -CAcreateserial -out "$out/$name.crt" -days "$days" -sha256 -extfile "$ext" 2>/dev/null
done
chmod 0644 "$out"/*.crt
echo "make-certs: CA and certificates for $* in $out"

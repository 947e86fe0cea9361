#!/usr/bin/env bash
# Creates the two Secrets a bkv StatefulSet needs, for development clusters
# (kind) and first installs:
#
#   deploy/k8s/make-secrets.sh [--print] NAMESPACE REPLICAS [CERT_DIR]
#
# bkv-tls  ca.crt, node-N.crt, node-N.key for N = 1..REPLICAS, made by
#          deploy/certs/make-certs.sh in CERT_DIR (default data/k8s-certs;
#          the CA key stays there, never in the cluster). Each node
#          certificate also names the pod's stable DNS names
#          (bkv-<N-1>.bkv-peer[.NS.svc[.cluster.local]]) and the client
#          Service (bkv, bkv.NS.svc).
# bkv-hsm  pin-N and so-pin-N: random 32-hex-digit PINs, generated in a
#          private temporary directory that is removed on exit. An existing
#          bkv-hsm Secret is NEVER replaced (its PINs protect existing
#          tokens): only missing pin-N / so-pin-N keys are added.
#
# bkv-issuer-jwks (a ConfigMap, public keys only; not with --print): when the
#          namespace has none, a DEVELOPMENT token issuer is made in CERT_DIR
#          (dev-issuer.key.json, private; dev-issuer.jwks.json) for audience
#          $BKV_CLUSTER_ID (default bkv-kind, the kind overlay's cluster id),
#          and its JWKS becomes the ConfigMap. A production cluster creates
#          this ConfigMap from its account service's JWKS instead
#          (docs/operations.md "Client authentication").
#
# Applies with kubectl to the current context. --print writes the Secret
# manifests to stdout instead (for a sealed-secrets / SOPS pipeline or the
# tests); treat that output as secret. PINs never appear in a command line.
set -euo pipefail
umask 077

print=false
if [[ ${1:-} == --print ]]; then print=true; shift; fi
if [[ $# -lt 2 || $# -gt 3 ]] || ! [[ $2 =~ ^[1-9][0-9]?$ ]]; then
  echo "usage: $0 [--print] NAMESPACE REPLICAS [CERT_DIR]" >&2
  exit 2
fi
ns=$1
n=$2
certs=${3:-data/k8s-certs}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bkv-secrets.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

for ((id = 1; id <= n; id++)); do
  pod="bkv-$((id - 1))"
  EXTRA_SANS="DNS:$pod.bkv-peer,DNS:$pod.bkv-peer.$ns.svc,DNS:$pod.bkv-peer.$ns.svc.cluster.local,DNS:bkv,DNS:bkv.$ns.svc" \
    bash "$here/../certs/make-certs.sh" "$certs" "$id" >/dev/null
done

tls_args=(--from-file="ca.crt=$certs/ca.crt")
for ((id = 1; id <= n; id++)); do
  tls_args+=(--from-file="node-$id.crt=$certs/node-$id.crt" --from-file="node-$id.key=$certs/node-$id.key")
done

# existing_hsm_keys: the keys of the live bkv-hsm Secret (none with --print).
existing_hsm_keys() {
  $print && return 0
  kubectl -n "$ns" get secret bkv-hsm -o go-template='{{range $k, $v := .data}}{{$k}}{{"\n"}}{{end}}' 2>/dev/null || true
}
existing=$(existing_hsm_keys)
hsm_args=()
for ((id = 1; id <= n; id++)); do
  for key in "pin-$id" "so-pin-$id"; do
    grep -Fxq -- "$key" <<<"$existing" && continue
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$tmp/$key"
    hsm_args+=(--from-file="$key=$tmp/$key")
  done
done

emit() { # NAME ARGS...: a Secret manifest on stdout
  local name=$1
  shift
  kubectl create secret generic "$name" -n "$ns" "$@" --dry-run=client -o yaml
}

if $print; then
  emit bkv-tls "${tls_args[@]}"
  echo "---"
  emit bkv-hsm "${hsm_args[@]}"
  exit 0
fi
emit bkv-tls "${tls_args[@]}" | kubectl apply -f -
if [[ -z $existing ]]; then
  emit bkv-hsm "${hsm_args[@]}" | kubectl apply -f -
elif ((${#hsm_args[@]} > 0)); then
  # Add only the new keys: a JSON merge patch read from a file, not argv.
  {
    printf '{"data":{'
    sep=""
    for arg in "${hsm_args[@]}"; do
      spec=${arg#--from-file=}
      printf '%s"%s":"%s"' "$sep" "${spec%%=*}" "$(base64 -w0 <"${spec#*=}")"
      sep=","
    done
    printf '}}'
  } >"$tmp/patch.json"
  kubectl -n "$ns" patch secret bkv-hsm --type merge --patch-file "$tmp/patch.json" >/dev/null
  echo "make-secrets: added $((${#hsm_args[@]})) key(s) to the existing bkv-hsm Secret"
else
  echo "make-secrets: bkv-hsm already holds PINs for nodes 1..$n (kept)"
fi
if ! kubectl -n "$ns" get configmap bkv-issuer-jwks >/dev/null 2>&1; then
  (cd "$here/../.." && node --no-deprecation --import tsx deploy/local/dev-issuer.ts "$certs" "${BKV_CLUSTER_ID:-bkv-kind}" >/dev/null)
  kubectl create configmap bkv-issuer-jwks -n "$ns" --from-file="jwks.json=$certs/dev-issuer.jwks.json" --dry-run=client -o yaml | kubectl apply -f -
  echo "make-secrets: bkv-issuer-jwks holds a DEVELOPMENT token issuer (private key $certs/dev-issuer.key.json)"
fi
echo "make-secrets: bkv-tls and bkv-hsm ready in namespace $ns (CA and node keys in $certs)"

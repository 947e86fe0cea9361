#!/usr/bin/env bash
# A 3-node bkv cluster from the bkv image on 127.0.0.1, each "pod" run the
# way deploy/k8s/base/statefulset.yaml runs it: first the init container
# (`bash /opt/bkv-init/init-node.sh` with POD_NAME, BKV_INIT_SOFTHSM,
# BKV_BOOTSTRAP_VOTERS, BKV_NODE_IDS and the same mounts), then bkv-node
# (`--config /etc/bkv/config.json`, POD_NAME, POD_NAMESPACE, BKV_LOG_LEVEL, the issuer's JWKS at
# /etc/bkv-issuer as the ConfigMap bkv-issuer-jwks mounts it),
# as uid 10001 with a read-only root filesystem, no capabilities, no new
# privileges and a /tmp tmpfs. Pods become containers with --network host
# (no Docker network is created); the volumes are directories under DIR.
#
# The one difference from Kubernetes: pods share the host's addresses, so
# each node listens on its own 127.0.0.1 ports (BKV_*_LISTEN) and the
# ConfigMap's node list names those ports. Node N (pod bkv-<N-1>): client
# BASE+N, peer BASE+100+N, admin BASE+200+N, metrics BASE+300+N.
#
#   deploy/docker/cluster.sh up DIR [IMAGE]   (default IMAGE bkv:dev, BASE $BKV_DOCKER_PORT_BASE or 27100)
#   deploy/docker/cluster.sh down DIR
#
# `up` ends with DIR/client/cluster.json, fetched with the image's own CLI,
# and beside it the development issuer's key (DIR/client/dev-issuer.key.json),
# with which the CLI mints the users' tokens; then, e.g.:
#   printf 'pw\n' | docker run -i --rm --network host --user 10001:10001 -v DIR/client:/client \
#     --entrypoint bkv IMAGE register --user alice --password-stdin --cluster /client/cluster.json
set -euo pipefail
cd "$(dirname "$0")/../.."
cmd=${1:?usage: $0 up|down DIR [IMAGE]}
dir=${2:?usage: $0 up|down DIR [IMAGE]}
image=${3:-bkv:dev}
base=${BKV_DOCKER_PORT_BASE:-27100}
ids=(1 2 3)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if [[ $cmd == down ]]; then
  for id in "${ids[@]}"; do docker rm -f "bkv-$((id - 1))" >/dev/null 2>&1 || true; done
  exit 0
fi
[[ $cmd == up ]] || { echo "usage: $0 up|down DIR [IMAGE]" >&2; exit 64; }

# Secrets bkv-tls and bkv-hsm, the ConfigMaps bkv-config, bkv-init and
# bkv-issuer-jwks (a development token issuer, as the kind overlay makes).
umask 077
bash deploy/certs/make-certs.sh "$dir/ca" "${ids[@]}" >/dev/null
mkdir -p "$dir/secret-tls" "$dir/secret-hsm" "$dir/configmap-config" "$dir/configmap-init" "$dir/configmap-issuer" "$dir/client"
node --no-deprecation --import tsx deploy/local/dev-issuer.ts "$dir/client" bkv >/dev/null
cp "$dir/client/dev-issuer.jwks.json" "$dir/configmap-issuer/jwks.json"
cp "$dir/ca/ca.crt" "$dir/secret-tls/"
for id in "${ids[@]}"; do
  cp "$dir/ca/node-$id.crt" "$dir/ca/node-$id.key" "$dir/secret-tls/"
  [[ -s $dir/secret-hsm/pin-$id ]] || head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/secret-hsm/pin-$id"
done
cp deploy/k8s/base/init-node.sh "$dir/configmap-init/"
node -e '
const fs = require("node:fs");
const [src, out, base] = process.argv.slice(1);
const c = JSON.parse(fs.readFileSync(src, "utf8"));
const at = (n, offset) => `127.0.0.1:${Number(base) + offset + n.id}`;
c.nodes = c.nodes.map((n) => ({ ...n, clientAddress: at(n, 0), peerAddress: at(n, 100), adminAddress: at(n, 200) }));
fs.writeFileSync(out, JSON.stringify(c, null, 2) + "\n");
' deploy/k8s/base/config.json "$dir/configmap-config/config.json" "$base"
for id in "${ids[@]}"; do
  mkdir -p "$dir/bkv-$((id - 1))"/{config,secrets,data,hsm-token}
done
chown -R 10001:10001 "$dir"
chmod 0755 "$dir" "$dir/configmap-init" "$dir/configmap-config" "$dir/configmap-issuer"
chmod 0644 "$dir/configmap-issuer/jwks.json"

security=(--network host --user 10001:10001 --read-only --cap-drop ALL --security-opt no-new-privileges --tmpfs /tmp)
for id in "${ids[@]}"; do
  pod=bkv-$((id - 1))
  vol=$dir/$pod
  docker run --rm --name "$pod-init" "${security[@]}" \
    -e POD_NAME="$pod" -e BKV_INIT_SOFTHSM=true -e BKV_BOOTSTRAP_VOTERS=3 -e BKV_NODE_IDS= \
    -v "$dir/configmap-init:/opt/bkv-init:ro" -v "$dir/configmap-config:/etc/bkv-template:ro" \
    -v "$dir/secret-hsm:/etc/bkv-secrets/hsm:ro" -v "$dir/secret-tls:/etc/bkv-secrets/tls:ro" \
    -v "$vol/config:/etc/bkv" -v "$vol/secrets:/run/bkv/secrets" -v "$vol/data:/var/lib/bkv/data" -v "$vol/hsm-token:/var/lib/bkv/hsm" \
    --entrypoint bash "$image" /opt/bkv-init/init-node.sh
  docker run -d --name "$pod" "${security[@]}" \
    -e POD_NAME="$pod" -e POD_NAMESPACE=docker -e BKV_LOG_LEVEL=info \
    -e BKV_CLIENT_LISTEN="127.0.0.1:$((base + id))" -e BKV_PEER_LISTEN="127.0.0.1:$((base + 100 + id))" \
    -e BKV_ADMIN_LISTEN="127.0.0.1:$((base + 200 + id))" -e BKV_METRICS_LISTEN="127.0.0.1:$((base + 300 + id))" \
    -v "$vol/config:/etc/bkv:ro" -v "$vol/secrets:/run/bkv/secrets:ro" -v "$vol/data:/var/lib/bkv/data" -v "$vol/hsm-token:/var/lib/bkv/hsm" \
    -v "$dir/configmap-issuer:/etc/bkv-issuer:ro" \
    "$image" --config /etc/bkv/config.json >/dev/null
done

# Ready (/readyz: a leader known, apply lag and HSM probe fine) on every node, as the readiness probe asks.
for id in "${ids[@]}"; do
  for _ in $(seq 120); do
    node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
      "http://127.0.0.1:$((base + 300 + id))/readyz" && continue 2
    sleep 1
  done
  echo "bkv-$((id - 1)) never became ready; its log:" >&2
  docker logs --tail 20 "bkv-$((id - 1))" >&2
  exit 1
done
echo "3 nodes ready; fetching the descriptor with the image's CLI"
for _ in $(seq 60); do
  docker run --rm --network host --user 10001:10001 -v "$dir/client:/client" -v "$dir/ca/ca.crt:/ca.crt:ro" \
    -e BKV_DEV_ISSUER_KEY=/client/dev-issuer.key.json --entrypoint bkv "$image" \
    cluster fetch --address "127.0.0.1:$((base + 1))" --ca /ca.crt --out /client/cluster.json --force >/dev/null 2>&1 &&
    node -e 'process.exit(JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")).nodes.length === 3 ? 0 : 1)' "$dir/client/cluster.json" &&
    { echo "$dir/client/cluster.json"; exit 0; }
  sleep 1
done
echo "the descriptor never listed the 3 nodes" >&2
exit 1

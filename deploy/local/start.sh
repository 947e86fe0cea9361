#!/usr/bin/env bash
# `npm start`: a 3-node bkv cluster on 127.0.0.1 with one SoftHSM token per
# node, under data/local/ (BKV_LOCAL_DIR). A second run reuses the tokens,
# certificates and Raft data. Ctrl-C stops the three nodes gracefully.
#
# Ports (BKV_LOCAL_PORT_BASE, default 7100): node N serves clients on
# base+N, peers on base+100+N, admin (mTLS) on base+200+N, metrics on
# base+300+N (/metrics, /healthz, /readyz). admin.json beside the client
# descriptor names the admin ports and the operator certificate, so `bkv
# admin` needs no flags here.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

if [ "$(id -u)" = 0 ]; then
  bash deploy/local/preflight.sh --install
else
  bash deploy/local/preflight.sh
fi

dir=${BKV_LOCAL_DIR:-data/local}
base=${BKV_LOCAL_PORT_BASE:-7100}
cluster_id=${BKV_CLUSTER_ID:-bkv-local}
ids=(1 2 3)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
umask 077

# A previous `npm start` still running (or its nodes left behind by a killed script) holds the ports:
# say so before anything here is rewritten, naming its node processes when they are this directory's.
ports=()
for id in "${ids[@]}"; do ports+=($((base + id)) $((base + 100 + id)) $((base + 200 + id)) $((base + 300 + id))); done
busy=$(node -e '
  const net = require("node:net");
  const inUse = (p) => new Promise((r) => { const s = net.createServer(); s.once("error", (e) => r(e.code === "EADDRINUSE")); s.listen(p, "127.0.0.1", () => s.close(() => r(false))); });
  (async () => { const b = []; for (const p of process.argv.slice(1)) if (await inUse(Number(p))) b.push(p); console.log(b.join(" ")); })();
' "${ports[@]}")
if [ -n "$busy" ]; then
  echo "npm start: port(s) $busy on 127.0.0.1 already in use (ports $base+N, +100, +200, +300 for nodes 1-3)." >&2
  running=$(pgrep -f -- "--config $dir/node-[0-9]+\.json" 2>/dev/null | xargs || true)
  if [ -n "$running" ]; then
    echo "  bkv-node processes of $dir still run (pids: $running): stop the other 'npm start' (Ctrl-C in its terminal), or: kill $running" >&2
  else
    echo "  stop whatever holds them, or pick other ports: BKV_LOCAL_PORT_BASE=8100 npm start" >&2
  fi
  exit 1
fi

# The nodes' certificates, and an operator's for `bkv admin` (which finds it through admin.json, below).
bash deploy/certs/make-certs.sh "$dir/certs" "${ids[@]}" operator >/dev/null
# The development token issuer: dev-issuer.key.json (private, 0600) for the
# bkv CLI, which mints short-lived tokens with it; dev-issuer.jwks.json for the nodes.
node --no-deprecation --import tsx deploy/local/dev-issuer.ts "$dir" "$cluster_id" >/dev/null

nodes_json=""
admin_json=""
for id in "${ids[@]}"; do
  nodes_json+="${nodes_json:+,}{\"id\":$id,\"clientAddress\":\"127.0.0.1:$((base + id))\",\"peerAddress\":\"127.0.0.1:$((base + 100 + id))\",\"adminAddress\":\"127.0.0.1:$((base + 200 + id))\"}"
  admin_json+="${admin_json:+, }\"127.0.0.1:$((base + 200 + id))\""
done
# `bkv admin` reads this beside the client descriptor when no --endpoints or --certs are given.
printf '{ "endpoints": [%s], "certs": "certs" }\n' "$admin_json" >"$dir/admin.json"

# Every client of a local cluster is 127.0.0.1: the per-address connection cap is the total one (as in the kind overlay).
for id in "${ids[@]}"; do
  bash deploy/softhsm/init-token.sh "$dir/hsm-$id" "bkv-local-$id" >/dev/null
  cat >"$dir/node-$id.json" <<JSON
{
  "nodeId": $id,
  "clusterId": "$cluster_id",
  "dataDir": "$dir/node-$id",
  "clientListen": "127.0.0.1:$((base + id))",
  "peerListen": "127.0.0.1:$((base + 100 + id))",
  "adminListen": "127.0.0.1:$((base + 200 + id))",
  "metricsListen": "127.0.0.1:$((base + 300 + id))",
  "threshold": 2,
  "hsm": { "tokenLabel": "bkv-local-$id", "pinFile": "$dir/hsm-$id/pin", "softhsmConf": "$dir/hsm-$id/softhsm2.conf" },
  "tls": { "ca": "$dir/certs/ca.crt", "cert": "$dir/certs/node-$id.crt", "key": "$dir/certs/node-$id.key" },
  "auth": { "issuers": [{ "issuer": "bkv-dev-issuer", "jwksFile": "$dir/dev-issuer.jwks.json" }] },
  "limits": { "maxConnectionsPerAddress": 512 },
  "nodes": [$nodes_json]
}
JSON
done

pids=()
# stop [CODE]: stops the nodes gracefully (SIGTERM), keeps the data, exits CODE.
stop() {
  trap - INT TERM
  echo
  echo "stopping the cluster..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped. Data kept in $dir (a new 'npm start' reuses it)."
  exit "${1:-0}"
}
trap stop INT TERM
failed_start() {
  echo "the cluster did not come up; last log lines:" >&2
  for id in "${ids[@]}"; do echo "--- node $id" >&2; tail -n 3 "$dir/node-$id.log" >&2 || true; done
  stop 1
}

# Two malloc arenas, a 256 MiB V8 heap and V8's heap growing factor, as in the container image, unless the caller's environment says otherwise (docs/operations.md, "Memory").
for id in "${ids[@]}"; do
  MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" NODE_OPTIONS="${NODE_OPTIONS:---max-old-space-size=256}" node --heap-growing-percent=300 --import tsx "$root/node/server/main.ts" --config "$dir/node-$id.json" >>"$dir/node-$id.log" 2>&1 &
  pids+=($!)
done
echo "started nodes ${ids[*]} (logs: $dir/node-N.log); waiting for a leader and the node announcements..."

addresses=()
for id in "${ids[@]}"; do addresses+=("127.0.0.1:$((base + id))"); done
BKV_DEV_ISSUER_KEY="$dir/dev-issuer.key.json" node --no-deprecation --import tsx deploy/local/write-descriptor.ts "$dir/cluster.json" "$dir/certs/ca.crt" "${#ids[@]}" "${addresses[@]}" &
writer=$!
while kill -0 "$writer" 2>/dev/null; do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      kill "$writer" 2>/dev/null || true
      failed_start
    fi
  done
  sleep 1
done
wait "$writer" || failed_start

cat <<MSG

bkv cluster '$cluster_id' is up: 3 nodes, threshold 2.
  descriptor  $dir/cluster.json   (the CLI's default --cluster)
  tokens      minted by the CLI with $dir/dev-issuer.key.json (development issuer; keep it private)
  clients     ${addresses[*]}
  admin       127.0.0.1:$((base + 201)) (and +1, +2), mTLS with $dir/certs/operator.crt; \`npm run bkv -- admin --help\`
  metrics     http://127.0.0.1:$((base + 301))/metrics  (and +1, +2)

In another terminal:
  echo 'my password' | npx tsx client/cli/main.ts register --user alice --password-stdin
  echo 'my password' | npx tsx client/cli/main.ts recover --user alice --password-stdin
  npx tsx client/cli/main.ts status
  npx tsx client/cli/main.ts admin status
  (or: npm run bkv -- register --user alice --password-stdin)

Ctrl-C stops the cluster.
MSG

wait

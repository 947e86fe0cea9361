#!/usr/bin/env bash
# Init container of a bkv vault pod (runs with the bkv image, before bkv-node).
#
# 1. node id = pod ordinal + 1, or the id BKV_NODE_IDS ("ORDINAL=ID,...")
#    gives an ordinal whose node was replaced (ids are never reused); recorded
#    once on the data volume (data/node-id). A volume recorded for another id
#    is refused, and so is an empty data volume next to an existing token (a
#    voter that lost its Raft state must not vote again: docs/kubernetes.md).
#    join = id > BKV_BOOTSTRAP_VOTERS: nodes added later wait for the leader
#    instead of bootstrapping.
# 2. copies only THIS node's PIN, certificate and key from the mounted
#    Secrets (bkv-hsm: pin-N [so-pin-N]; bkv-tls: ca.crt, node-N.crt,
#    node-N.key) into the memory-backed /run/bkv/secrets, mode 0400.
# 3. renders /etc/bkv/config.json: the ConfigMap template plus nodeId, join
#    and tokenLabel "<template label>-N".
# 4. BKV_INIT_SOFTHSM=true: creates the node's SoftHSM token once in
#    /var/lib/bkv/hsm (deploy/softhsm/init-token.sh) with the PIN of the
#    Secret; the PIN files init-token.sh needs are removed again on exit, so
#    the only persistent copy of the PIN is the Secret.
# Never prints a PIN. Needs: bash, node, softhsm2-util (all in the image).
set -euo pipefail
umask 077

pod=${POD_NAME:?POD_NAME (downward API) is not set}
ordinal=${pod##*-}
if ! [[ $ordinal =~ ^[0-9]+$ ]]; then
  echo "init-node: pod name '$pod' does not end in a StatefulSet ordinal" >&2
  exit 1
fi
id=$((10#$ordinal + 1))
if [[ -n ${BKV_NODE_IDS:-} ]]; then
  for pair in ${BKV_NODE_IDS//,/ }; do
    if ! [[ $pair =~ ^([0-9]+)=([1-9][0-9]{0,8})$ ]]; then
      echo "init-node: BKV_NODE_IDS entry '$pair' is not ORDINAL=ID" >&2
      exit 1
    fi
    if ((10#${BASH_REMATCH[1]} == 10#$ordinal)); then id=${BASH_REMATCH[2]}; fi
  done
fi
bootstrap_voters=${BKV_BOOTSTRAP_VOTERS:-}
if ! [[ $bootstrap_voters =~ ^[1-9][0-9]{0,8}$ ]]; then
  echo "init-node: BKV_BOOTSTRAP_VOTERS must be the number of voters the cluster was created with" >&2
  exit 1
fi
join=false
if ((id > bootstrap_voters)); then join=true; fi
# BKV_INIT_ROOT prefixes every path (tests run the script in a temp dir).
root=${BKV_INIT_ROOT:-}
data=$root/var/lib/bkv/data
token_dir=$root/var/lib/bkv/hsm
secrets=$root/run/bkv/secrets
hsm_secret=$root/etc/bkv-secrets/hsm
tls_secret=$root/etc/bkv-secrets/tls
config_in=$root/etc/bkv-template/config.json
config_out=$root/etc/bkv/config.json
init_token=${BKV_INIT_TOKEN_SCRIPT:-/opt/bkv/deploy/softhsm/init-token.sh}

# 1. Permanent node id.
if [[ -s $data/node-id ]]; then
  owner=$(cat "$data/node-id")
  if [[ $owner != "$id" ]]; then
    echo "init-node: data volume of $pod belongs to node $owner, not $id: refusing" >&2
    exit 1
  fi
else
  if [[ -d $token_dir/tokens ]] && [[ -n $(ls -A "$token_dir/tokens") ]]; then
    echo "init-node: $pod has a token but an empty data volume: node $id lost its Raft state and must not vote again; replace it under a new id (docs/kubernetes.md)" >&2
    exit 1
  fi
  echo "$id" >"$data/node-id.tmp"
  mv "$data/node-id.tmp" "$data/node-id"
fi

# 2. This node's secrets only.
copy_secret() { # SRC DEST WHAT
  if [[ ! -s $1 ]]; then
    echo "init-node: $3 is missing (expected $1)" >&2
    exit 1
  fi
  install -m 0400 "$1" "$secrets/$2"
}
copy_secret "$hsm_secret/pin-$id" pin "HSM PIN of node $id (Secret bkv-hsm, key pin-$id)"
copy_secret "$tls_secret/ca.crt" ca.crt "cluster CA (Secret bkv-tls, key ca.crt)"
copy_secret "$tls_secret/node-$id.crt" node.crt "certificate of node $id (Secret bkv-tls, key node-$id.crt)"
copy_secret "$tls_secret/node-$id.key" node.key "key of node $id (Secret bkv-tls, key node-$id.key)"

# 3. Per-node config.
label=$(node -e '
const fs = require("node:fs");
const [tpl, out, id, join] = process.argv.slice(1);
const c = JSON.parse(fs.readFileSync(tpl, "utf8"));
c.nodeId = Number(id);
c.join = join === "true";
if (!Array.isArray(c.nodes) || !c.nodes.some((n) => n.id === c.nodeId)) {
  console.error(`init-node: the config lists no node ${id}: add it to config.json before scaling`);
  process.exit(1);
}
c.hsm = { ...c.hsm, tokenLabel: `${c.hsm.tokenLabel}-${id}` };
fs.writeFileSync(`${out}.tmp`, JSON.stringify(c, null, 2) + "\n", { mode: 0o444 });
fs.renameSync(`${out}.tmp`, out);
process.stdout.write(c.hsm.tokenLabel);
' "$config_in" "$config_out" "$id" "$join")

# 4. The SoftHSM token, once.
if [[ ${BKV_INIT_SOFTHSM:-true} == true ]]; then
  trap 'rm -f "$token_dir/pin" "$token_dir/so-pin"' EXIT
  install -m 0600 "$secrets/pin" "$token_dir/pin"
  if [[ -s $hsm_secret/so-pin-$id ]]; then
    install -m 0600 "$hsm_secret/so-pin-$id" "$token_dir/so-pin"
  fi
  bash "$init_token" "$token_dir" "$label" >&2
fi
echo "init-node: $pod is node $id (token '$label', join $join)"

// Waits until the local cluster has a leader and every node announced itself,
// then writes the client descriptor (docs/client.md format) from
// GetClusterDescriptor, with the cluster CA. Used by deploy/local/start.sh.
// Its calls carry tokens minted with the development issuer key named by
// BKV_DEV_ISSUER_KEY (none when unset).
//   tsx deploy/local/write-descriptor.ts OUT CA_FILE EXPECTED_NODES ADDRESS...
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { VaultService } from "../../proto/gen/bkv/v1/vault_pb.js";
import { unaryClient } from "../../proto/rpc.js";
import { bearerInterceptor, descriptorToJson, parseDescriptor } from "../../client/sdk/index.js";
import { devTokenProvider, loadDevIssuer } from "../../client/cli/dev-issuer.js";

const [out, caFile, expected, ...addresses] = process.argv.slice(2);
if (out === undefined || caFile === undefined || expected === undefined || addresses.length === 0) {
  process.stderr.write("usage: write-descriptor.ts OUT CA_FILE EXPECTED_NODES ADDRESS...\n");
  process.exit(2);
}
const ca = readFileSync(caFile, "utf8");
const creds = grpc.credentials.createSsl(Buffer.from(ca));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const deadline = Date.now() + Number(process.env.BKV_START_TIMEOUT_MS ?? 120_000);
const devKey = process.env.BKV_DEV_ISSUER_KEY;
const channelOptions = devKey === undefined ? {} : { interceptors: [bearerInterceptor(devTokenProvider(await loadDevIssuer(devKey)))] };

async function poll(): Promise<object | undefined> {
  for (const address of addresses) {
    const { client, channel } = unaryClient(VaultService, address, creds, channelOptions);
    try {
      const res = await client.getClusterDescriptor({}, { deadline: new Date(Date.now() + 2000) });
      const d = res.descriptor;
      if (d === undefined || d.nodes.length < Number(expected)) continue;
      return descriptorToJson(parseDescriptor({
        version: 1, clusterId: d.clusterId, threshold: d.threshold, tls: { ca },
        nodes: d.nodes.map((n) => ({
          nodeId: Number(n.nodeId), address: n.address, agreementPublicKey: hex(n.agreementPublicKey),
          identityPublicKey: hex(n.identityPublicKey), signature: hex(n.signature),
        })),
      }));
    } catch {
      // not up yet
    } finally {
      channel.close();
    }
  }
  return undefined;
}

for (;;) {
  const json = await poll();
  if (json !== undefined) {
    writeFileSync(`${out}.tmp`, `${JSON.stringify(json, null, 2)}\n`);
    renameSync(`${out}.tmp`, out);
    process.exit(0);
  }
  if (Date.now() > deadline) {
    process.stderr.write("the cluster did not elect a leader and announce every node in time (see data/local/node-*.log)\n");
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 300));
}

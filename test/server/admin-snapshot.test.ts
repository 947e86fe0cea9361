// SaveSnapshot end to end on one in-process admin server (real gRPC, real
// mTLS on 127.0.0.1, a fake AdminLoop): AdminLoop.snapshotStream's chunks
// reach AdminClient.snapshot in order and whole, however many there are; a
// stream that fails midway ends with the failure's status, never as a
// complete snapshot; a caller that stops reading and goes away ends the
// call and closes the source (a held store view). The caller is the operator
// certificate through the admin port's caller check.
import test from "ava";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { AdminClient } from "../../client/admin/client.js";
import { RpcError } from "../../client/sdk/errors.js";
import { AdminService } from "../../proto/gen/bkv/v1/admin_pb.js";
import { serviceDefinition, strictServer } from "../../proto/rpc.js";
import { adminAuth } from "../../node/server/admin-auth.js";
import { adminService } from "../../node/server/admin-service.js";
import { ProposalError } from "../../node/server/raft-loop.js";
import type { AdminLoop } from "../../node/server/raft-view.js";
import { bindMtls, makeCerts } from "../transport/helpers.js";

const certs = makeCerts([1, "operator"]);
const dir = certs.dir;
const pem = (name: string) => readFileSync(join(dir, name));
let chunks: Uint8Array[] = [];
let failAfter = Infinity;
/** Streams whose source was closed (the node's: a pinned store view released). */
let closedSources = 0;

async function* stream(): AsyncIterable<Uint8Array> {
  try {
    for (const [i, c] of chunks.entries()) {
      if (i >= failAfter) throw new ProposalError("STOPPED", "the node is shutting down");
      yield await Promise.resolve(c);
    }
  } finally {
    closedSources++;
  }
}

let server: grpc.Server;
let address: string;
const records: string[] = [];

test.before(async () => {
  server = strictServer({ undecodable: () => undefined }, { interceptors: [adminAuth(() => undefined)] });
  const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  server.addService(serviceDefinition(AdminService), adminService({
    nodeId: 1, clusterId: "c", loop: () => ({ snapshotStream: stream }) as unknown as AdminLoop, peerReachable: () => true,
    leaderHint: () => ({ leaderId: 1, leaderAddress: "", self: 1 }), adminAddressOf: () => "", promoteMaxLag: 0,
    facts: () => Promise.reject(new Error("unused")), log: quiet,
    record: (method, code) => records.push(`${method} ${code}`),
  }));
  address = await bindMtls(server, dir, 1);
});

test.after.always(() => {
  server?.forceShutdown();
  certs.cleanup();
});

function operator(): AdminClient {
  return new AdminClient({ endpoints: [address], tls: { ca: pem("ca.crt"), cert: pem("operator.crt"), key: pem("operator.key") } });
}

async function save(): Promise<Buffer> {
  const client = operator();
  try {
    const got: Uint8Array[] = [];
    for await (const c of client.snapshot(address)) got.push(c);
    return Buffer.concat(got);
  } finally {
    client.close();
  }
}

test.serial("every chunk arrives, in order (many chunks, more than a stream window)", async (t) => {
  chunks = Array.from({ length: 40 }, () => new Uint8Array(randomBytes(256 * 1024)));
  failAfter = Infinity;
  const got = await save();
  t.is(got.length, 40 * 256 * 1024);
  t.true(got.equals(Buffer.concat(chunks)));
  t.true(records.includes("SaveSnapshot OK"));
});

test.serial("an empty snapshot is an empty stream", async (t) => {
  chunks = [];
  t.is((await save()).length, 0);
});

test.serial("a stream that fails midway ends with the failure's status, not as a snapshot", async (t) => {
  chunks = Array.from({ length: 5 }, () => new Uint8Array(1024));
  failAfter = 3;
  const err = await t.throwsAsync(save());
  t.true(err instanceof RpcError, String(err));
  t.is((err as RpcError).codeName, "UNAVAILABLE");
  t.regex((err as RpcError).message, /SaveSnapshot on 127\.0\.0\.1:\d+: UNAVAILABLE: the node is shutting down/);
  t.true(records.includes("SaveSnapshot UNAVAILABLE"));
});

test.serial("a caller that stops reading and cancels ends the call: the source is closed, CANCELLED recorded", async (t) => {
  chunks = Array.from({ length: 40 }, () => new Uint8Array(256 * 1024)); // more than the stream's window: the node waits for the reader
  failAfter = Infinity;
  const before = closedSources;
  const client = operator();
  try {
    for await (const _ of client.snapshot(address)) {
      await new Promise((r) => setTimeout(r, 300)); // the node's writes back up meanwhile
      break; // AdminClient.snapshot cancels the call
    }
    const deadline = Date.now() + 5000;
    while (closedSources === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    t.is(closedSources, before + 1, "the source of a cancelled call was never closed (a store view held for good)");
    t.true(records.includes("SaveSnapshot CANCELLED"), records.join(", "));
  } finally {
    client.close();
  }
});

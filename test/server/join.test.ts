// A joining node's Joiner (node/server/join.ts) against a stub admin port:
// real gRPC with mTLS on 127.0.0.1, the node's own view faked (this layer
// only). The stub records AddLearner and PromoteLearner; each test moves the
// view through the states a real join passes and checks which calls follow.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AddLearnerResponseSchema, AdminService, PromoteLearnerResponseSchema } from "../../proto/gen/bkv/v1/admin_pb.js";
import { serviceDefinition, strictServer } from "../../proto/rpc.js";
import { Joiner } from "../../node/server/join.js";
import type { RaftView } from "../../node/server/raft-view.js";
import { waitFor } from "../../testkit/cluster.js";
import { bindMtls, makeCerts } from "../transport/helpers.js";

const certs = makeCerts([1, 4]);
const dir = certs.dir;
const pem = (name: string) => readFileSync(join(dir, name));
const tls = { ca: pem("ca.crt"), cert: pem("node-4.crt"), key: pem("node-4.key") };

let server: grpc.Server;
let address: string;
const calls: string[] = [];

test.before(async () => {
  server = strictServer({ undecodable: () => undefined });
  server.addService(serviceDefinition(AdminService), {
    addLearner: (call: grpc.ServerUnaryCall<{ nodeId: bigint }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      calls.push(`AddLearner ${call.request.nodeId}`);
      cb(null, create(AddLearnerResponseSchema, { index: 7n }));
    },
    promoteLearner: (call: grpc.ServerUnaryCall<{ nodeId: bigint }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      calls.push(`PromoteLearner ${call.request.nodeId}`);
      cb(null, create(PromoteLearnerResponseSchema, { index: 9n }));
    },
  } as never);
  address = await bindMtls(server, dir, 1);
});

test.after.always(() => {
  server?.forceShutdown();
  certs.cleanup();
});

interface View { voters: number[]; learners: number[]; applied: number; commit: number }

function joiner(view: View, said: string[]): Joiner {
  const log = { debug: () => undefined, info: (m: string) => said.push(m), warn: () => undefined, error: () => undefined };
  const loop = () => ({ voters: view.voters, learners: view.learners, commitIndex: view.commit, vault: { appliedIndex: view.applied } }) as unknown as RaftView;
  return new Joiner({ nodeId: 4, peerAddress: "127.0.0.1:1", adminAddresses: [address], tls, loop, log, intervalMs: 20 });
}

const settle = () => new Promise((r) => setTimeout(r, 200)); // ten intervals

test.serial("a snapshot older than the node's addition does not end the join: once the entries after it make it a learner, it asks to be promoted", async (t) => {
  calls.length = 0;
  const view: View = { voters: [], learners: [], applied: 0, commit: 0 };
  const said: string[] = [];
  const j = joiner(view, said);
  j.start();
  try {
    await waitFor(() => calls.includes("AddLearner 4") || undefined, "AddLearner");
    // The leader's stored snapshot predates the AddLearner entry: the node is in no role yet.
    Object.assign(view, { voters: [1, 2, 3], applied: 5, commit: 5 });
    await settle();
    t.deepEqual(calls, ["AddLearner 4"], "not added twice, nothing promoted yet");
    t.true(said.some((m) => m.includes("not in the configuration it applied")));
    Object.assign(view, { learners: [4], applied: 8, commit: 8 }); // the entries after the snapshot
    await waitFor(() => calls.includes("PromoteLearner 4") || undefined, "PromoteLearner");
    Object.assign(view, { voters: [1, 2, 3, 4], learners: [] });
    await waitFor(() => said.includes("join: this node is a voter") || undefined, "the joiner to stop");
    const n = calls.length;
    await settle();
    t.is(calls.length, n, "a voter asks nothing");
  } finally {
    j.stop();
  }
});

test.serial("a node with state in which it is no member (removed) never adds itself again", async (t) => {
  calls.length = 0;
  const said: string[] = [];
  const j = joiner({ voters: [1, 2, 3], learners: [], applied: 40, commit: 40 }, said);
  j.start();
  try {
    await settle();
    t.deepEqual(calls, []);
    t.is(said.filter((m) => m.includes("not in the configuration it applied")).length, 1, "said once");
  } finally {
    j.stop();
  }
});

test.serial("a learner that has not applied all it knows waits before asking to be promoted", async (t) => {
  calls.length = 0;
  const view: View = { voters: [1, 2, 3], learners: [4], applied: 5, commit: 9 };
  const j = joiner(view, []);
  j.start();
  try {
    await settle();
    t.deepEqual(calls, []);
    view.applied = 9;
    await waitFor(() => calls.includes("PromoteLearner 4") || undefined, "PromoteLearner");
    t.pass();
  } finally {
    j.stop();
  }
});

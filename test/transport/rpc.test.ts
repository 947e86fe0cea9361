// proto/rpc.ts over real gRPC: service definitions built from protoc-gen-es
// descriptors (server side), unaryClient (client side), and ErrorDetail
// carried in grpc-status-details-bin.

import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  GetRecordInfoRequestSchema, GetRecordInfoResponseSchema, VaultService, type GetRecordInfoRequest, type GetRecordInfoResponse,
} from "../../proto/gen/bkv/v1/vault_pb.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import {
  errorDetailOf, errorWithDetail, serviceDefinition, STATUS_DETAILS_KEY, unaryClient,
  type ImplementationOf,
} from "../../proto/rpc.js";

async function withVault(
  getRecordInfo: grpc.handleUnaryCall<GetRecordInfoRequest, GetRecordInfoResponse>,
  body: (call: (req: MessageInitShape<typeof GetRecordInfoRequestSchema>) => Promise<GetRecordInfoResponse>) => Promise<void>,
): Promise<void> {
  const def = serviceDefinition(VaultService);
  const server = new grpc.Server();
  const unimplemented = (_: unknown, cb: grpc.sendUnaryData<never>) => cb({ code: grpc.status.UNIMPLEMENTED });
  const impl: ImplementationOf<typeof VaultService> = {
    register: unimplemented, beginRecovery: unimplemented, evaluate: unimplemented, confirmRecovery: unimplemented,
    delete: unimplemented, getClusterDescriptor: unimplemented, getRecordInfo,
  };
  server.addService(def, impl);
  const port = await new Promise<number>((res, rej) => {
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => e ? rej(e) : res(p));
  });
  const { client, channel } = unaryClient(VaultService, `127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    await body((req) => client.getRecordInfo(req, { deadline: Date.now() + 10_000 }));
  } finally {
    channel.close();
    server.forceShutdown();
  }
}

test("the method path and streaming flags follow the proto", (t) => {
  const def = serviceDefinition(VaultService);
  t.is(def.getRecordInfo.path, "/bkv.v1.VaultService/GetRecordInfo");
  t.false(def.getRecordInfo.requestStream);
  t.false(def.getRecordInfo.responseStream);
  t.deepEqual(Object.keys(def).sort(), [
    "beginRecovery", "confirmRecovery", "delete", "evaluate", "getClusterDescriptor", "getRecordInfo", "register",
  ]);
});

test("a unary call round-trips its messages", async (t) => {
  await withVault((call, cb) => {
    cb(null, create(GetRecordInfoResponseSchema, {
      userId: call.request.userId, attemptsRemaining: 7, salt: new Uint8Array([1, 2, 3]), appliedIndex: 1n << 40n,
    }));
  }, async (call) => {
    const res = await call({ userId: "alice" });
    t.is(res.userId, "alice");
    t.is(res.attemptsRemaining, 7);
    t.deepEqual(res.salt, new Uint8Array([1, 2, 3]));
    t.is(res.appliedIndex, 1n << 40n);
  });
});

test("an error carries its ErrorDetail to the client, including zero attempts remaining", async (t) => {
  await withVault((_call, cb) => {
    cb(errorWithDetail(grpc.status.FAILED_PRECONDITION, "record is locked", {
      reason: ErrorReason.RECORD_LOCKED, attemptsRemaining: 0, leaderId: 3n, leaderAddress: "127.0.0.1:7003",
    }));
  }, async (call) => {
    const err = await t.throwsAsync(call({ userId: "bob" })) as unknown as grpc.ServiceError;
    t.is(err.code, grpc.status.FAILED_PRECONDITION);
    t.is(err.details, "record is locked");
    const detail = errorDetailOf(err);
    t.truthy(detail);
    t.is(detail!.reason, ErrorReason.RECORD_LOCKED);
    t.is(detail!.attemptsRemaining, 0, "present even when zero");
    t.is(detail!.leaderId, 3n);
    t.is(detail!.leaderAddress, "127.0.0.1:7003");
  });
});

test("an error without detail, or with an unreadable one, yields no ErrorDetail", async (t) => {
  let garbage = false;
  await withVault((_call, cb) => {
    const err = errorWithDetail(grpc.status.NOT_FOUND, "no such record");
    if (garbage) err.metadata.set(STATUS_DETAILS_KEY, Buffer.from([0xff, 0xff, 0xff]));
    cb(err);
  }, async (call) => {
    const plain = await t.throwsAsync(call({ userId: "carol" })) as unknown as grpc.ServiceError;
    t.is(plain.code, grpc.status.NOT_FOUND);
    t.is(errorDetailOf(plain), undefined);
    garbage = true;
    const bad = await t.throwsAsync(call({ userId: "carol" })) as unknown as grpc.ServiceError;
    t.is(bad.code, grpc.status.NOT_FOUND);
    t.is(errorDetailOf(bad), undefined);
  });
});

test("an unset optional attempts_remaining stays absent", async (t) => {
  await withVault((_call, cb) => {
    cb(errorWithDetail(grpc.status.UNAVAILABLE, "not the leader", { reason: ErrorReason.NOT_LEADER, leaderAddress: "h:1" }));
  }, async (call) => {
    const err = await t.throwsAsync(call({})) as unknown as grpc.ServiceError;
    const detail = errorDetailOf(err);
    t.is(detail?.reason, ErrorReason.NOT_LEADER);
    t.is(detail?.attemptsRemaining, undefined);
  });
});

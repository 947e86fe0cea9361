// watchEarlyEnds (proto/early-ends.ts) on a real grpc-js server on
// loopback: a call that ends before its handler gets the request is reported
// once, with its stage; one its handler answered, whatever the status, and
// one another interceptor refused, are not.
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { ServerInterceptingCall, ResponderBuilder } from "@grpc/grpc-js";
import { VaultService } from "../../proto/gen/bkv/v1/vault_pb.js";
import type { EarlyEndStage } from "../../proto/early-ends.js";
import { serviceDefinition, strictServer, unaryClient } from "../../proto/rpc.js";
import { everyMethod } from "./every-method.js";

interface Served {
  readonly ends: Array<{ method: string; stage: EarlyEndStage }>;
  readonly client: ReturnType<typeof unaryClient<typeof VaultService.method>>["client"];
  close(): void;
}

/** A server whose GetRecordInfo answers `code`, and whose interceptor refuses GetClusterDescriptor; the port caps messages at 1 KiB. */
async function serve(code: grpc.status): Promise<Served> {
  const ends: Served["ends"] = [];
  const refuseDescriptor: grpc.ServerInterceptor = (method, call) => new ServerInterceptingCall(call, new ResponderBuilder()
    .withStart((next) => {
      if (!method.path.endsWith("/GetClusterDescriptor")) { next(); return; }
      call.sendStatus({ code: grpc.status.PERMISSION_DENIED, details: "refused by an interceptor" });
    }).build());
  const server = strictServer(
    { undecodable: () => undefined, earlyEnd: (method, _peer, stage) => ends.push({ method, stage }) },
    { "grpc.max_receive_message_length": 1024, interceptors: [refuseDescriptor] },
  );
  const answer = (_call: unknown, cb: grpc.sendUnaryData<never>) => cb({ code, details: "answered by the handler" });
  server.addService(serviceDefinition(VaultService), everyMethod(answer));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const { client, channel } = unaryClient(VaultService, `127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return { ends, client, close: () => { channel.close(); server.forceShutdown(); } };
}

const codeOf = (p: Promise<unknown>): Promise<number | undefined> => p.then(() => grpc.status.OK, (e: { code?: number }) => e.code);
const settle = () => new Promise((r) => setTimeout(r, 50));

test("a request over the size cap ends inside grpc-js: reported once, before_request", async (t) => {
  const s = await serve(grpc.status.NOT_FOUND);
  t.teardown(() => s.close());
  t.is(await codeOf(s.client.getRecordInfo({ userId: "u".repeat(4096) })), grpc.status.RESOURCE_EXHAUSTED);
  await settle();
  t.deepEqual(s.ends, [{ method: "/bkv.v1.VaultService/GetRecordInfo", stage: "before_request" }]);
});

test("a call its handler answered is not reported, whatever the status (UNIMPLEMENTED included)", async (t) => {
  for (const code of [grpc.status.NOT_FOUND, grpc.status.UNIMPLEMENTED, grpc.status.CANCELLED]) {
    const s = await serve(code);
    t.is(await codeOf(s.client.getRecordInfo({ userId: "u" })), code);
    await settle();
    t.deepEqual(s.ends, [], grpc.status[code]);
    s.close();
  }
});

test("a call another interceptor refused is that interceptor's to report", async (t) => {
  const s = await serve(grpc.status.NOT_FOUND);
  t.teardown(() => s.close());
  t.is(await codeOf(s.client.getClusterDescriptor({})), grpc.status.PERMISSION_DENIED);
  await settle();
  t.deepEqual(s.ends, []);
});

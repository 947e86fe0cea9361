// grpc.health.v1 as the node serves it (node/server/health-service.ts): only
// the names served are answered; other names are NOT_FOUND (Check) or
// SERVICE_UNKNOWN (Watch) and leave nothing behind; over-long names are
// INVALID_ARGUMENT; a served name's watchers are its open streams. The first
// test is the review's repro (Watch + cancel with distinct 200 KiB names,
// no token): with grpc-health-check's HealthImplementation it kept ~80 MiB.
import test from "ava";
import { connect, type ClientHttp2Session } from "node:http2";
import { Writable } from "node:stream";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { NodeHealth } from "../../node/server/health.js";
import { HealthService, MAX_SERVICE_NAME_BYTES } from "../../node/server/health-service.js";
import { clientPortOptions } from "../../node/server/admission.js";
import type { LimitsConfig } from "../../node/server/config.js";
import { strictServer } from "../../proto/rpc.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const VAULT = "bkv.v1.VaultService";

interface HealthClient extends grpc.Client {
  check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
}
const pkg = grpc.loadPackageDefinition(loadSync(healthProtoPath, { enums: String })) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
const Health = pkg.grpc.health.v1.Health;

interface Served {
  readonly health: NodeHealth;
  readonly service: HealthService;
  readonly client: HealthClient;
  close(): void;
}

/** A client-port-like server (message cap 256 KiB, the default) serving health for "" and VAULT, and a client of it. */
async function serve(): Promise<Served> {
  const limits = { maxMessageBytes: 256 * 1024, maxConcurrentStreams: 100 } as LimitsConfig;
  const server = strictServer({ undecodable: () => undefined }, clientPortOptions(limits));
  const health = new NodeHealth(() => "SERVING");
  const service = health.serve(server, [VAULT]);
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.max_send_message_length": -1 }) as unknown as HealthClient;
  return { health, service, client, close: () => { client.close(); server.forceShutdown(); health.stop(); } };
}

function check(c: HealthClient, service: string): Promise<string> {
  return new Promise((resolve, reject) => c.check({ service }, (err, res) => (err ? reject(err) : resolve(res?.status ?? ""))));
}

/** The code `check` ends with (OK when it answers). */
async function checkCode(c: HealthClient, service: string): Promise<grpc.status> {
  try {
    await check(c, service);
    return grpc.status.OK;
  } catch (err) {
    return (err as grpc.ServiceError).code;
  }
}

/** Opens a Watch of `service`, cancels it after its first message; resolves with that message's status, or the error code. */
function watchOnce(c: HealthClient, service: string): Promise<string | grpc.status> {
  return new Promise((resolve) => {
    const call = c.watch({ service });
    call.once("data", (r: { status: string }) => { resolve(r.status); call.cancel(); });
    call.on("error", (err: grpc.ServiceError) => resolve(err.code));
    call.on("end", () => resolve("ended"));
  });
}

/** A Watch of `service` over raw HTTP/2 (a gRPC frame of HealthCheckRequest{service}), never read or ended. */
function rawWatch(session: ClientHttp2Session, service: string): void {
  const name = Buffer.from(service);
  const body = Buffer.concat([Buffer.from([0x0a, name.length]), name]); // names under 128 bytes: a one-byte length
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  const req = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Watch", "content-type": "application/grpc", te: "trailers" });
  req.on("error", () => undefined);
  req.end(frame);
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial("review repro: 400 Watch + cancel with distinct 200 KiB names, no token: refused, heap stays flat, nothing kept", async (t) => {
  const s = await serve();
  t.teardown(s.close);
  gc();
  const before = process.memoryUsage().heapUsed;
  const N = 400;
  const codes = new Map<string | grpc.status, number>();
  for (let i = 0; i < N; i += 20) {
    const batch = await Promise.all(Array.from({ length: 20 }, (_, j) => watchOnce(s.client, `${i + j}-`.padEnd(200 * 1024, "x"))));
    for (const c of batch) codes.set(c, (codes.get(c) ?? 0) + 1);
  }
  await tick(200);
  gc();
  const grownMiB = (process.memoryUsage().heapUsed - before) / 2 ** 20;
  t.log(`heapUsed +${grownMiB.toFixed(1)} MiB; answers ${JSON.stringify([...codes])}`);
  t.deepEqual([...codes], [[grpc.status.INVALID_ARGUMENT, N]]);
  // HealthImplementation kept ~80 MiB here (one empty Set keyed by each 200 KiB name).
  t.true(grownMiB < 16, `heap grew ${grownMiB.toFixed(1)} MiB`);
  t.deepEqual(s.service.watching(), { streams: 0, names: 0 });
});

test.serial("distinct short unknown names (90 open: under the stream cap of 100): Watch answers SERVICE_UNKNOWN and keeps nothing, open or cancelled", async (t) => {
  const s = await serve();
  t.teardown(s.close);
  const calls = Array.from({ length: 90 }, (_, i) => s.client.watch({ service: `no.such.Service${i}` }));
  const firsts = await Promise.all(calls.map((call) => new Promise<string>((resolve) => call.once("data", (r: { status: string }) => resolve(r.status)))));
  t.true(firsts.every((st) => st === "SERVICE_UNKNOWN"));
  t.deepEqual(s.service.watching(), { streams: 0, names: 0 }, "open unknown watches keep no state");
  // The stream stays open (the protocol: the status could become known); the caller ends it.
  let ended = false;
  calls[0]!.on("end", () => { ended = true; });
  calls[0]!.on("status", () => { ended = true; });
  await tick(300);
  t.false(ended);
  for (const call of calls) { call.on("error", () => undefined); call.cancel(); }
  await tick(100);
  t.deepEqual(s.service.watching(), { streams: 0, names: 0 });
});

test.serial("Check: served names answer, other names NOT_FOUND, names over the bound INVALID_ARGUMENT (Watch too)", async (t) => {
  const s = await serve();
  t.teardown(s.close);
  await tick(150); // the first poll sets SERVING
  t.is(await check(s.client, ""), "SERVING");
  t.is(await check(s.client, VAULT), "SERVING");
  t.is(await checkCode(s.client, "bkv.v1.NoSuchService"), grpc.status.NOT_FOUND);
  t.is(await checkCode(s.client, "x".repeat(MAX_SERVICE_NAME_BYTES)), grpc.status.NOT_FOUND);
  t.is(await checkCode(s.client, "x".repeat(MAX_SERVICE_NAME_BYTES + 1)), grpc.status.INVALID_ARGUMENT);
  t.is(await checkCode(s.client, "é".repeat(MAX_SERVICE_NAME_BYTES / 2 + 1)), grpc.status.INVALID_ARGUMENT, "the bound is in UTF-8 bytes");
  t.is(await watchOnce(s.client, "x".repeat(MAX_SERVICE_NAME_BYTES)), "SERVICE_UNKNOWN");
  t.is(await watchOnce(s.client, "x".repeat(MAX_SERVICE_NAME_BYTES + 1)), grpc.status.INVALID_ARGUMENT);
  t.is(await watchOnce(s.client, VAULT), "SERVING");
});

test.serial("a served name's watchers are exactly its open streams: they see changes, and the set is deleted once they end", async (t) => {
  let status: "SERVING" | "NOT_SERVING" = "SERVING";
  const limits = { maxMessageBytes: 256 * 1024, maxConcurrentStreams: 100 } as LimitsConfig;
  const server = strictServer({ undecodable: () => undefined }, clientPortOptions(limits));
  const health = new NodeHealth(() => status);
  const service = health.serve(server, [VAULT]);
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as HealthClient;
  t.teardown(() => { client.close(); server.forceShutdown(); health.stop(); });
  await tick(150);
  const calls = Array.from({ length: 30 }, (_, i) => client.watch({ service: i % 2 === 0 ? "" : VAULT }));
  const seen = calls.map(() => [] as string[]);
  calls.forEach((call, i) => { call.on("data", (r: { status: string }) => seen[i]!.push(r.status)); call.on("error", () => undefined); });
  await tick(150);
  t.deepEqual(service.watching(), { streams: 30, names: 2 });
  status = "NOT_SERVING";
  await tick(250);
  t.true(seen.every((s) => s.join() === "SERVING,NOT_SERVING"), JSON.stringify(seen));
  for (const call of calls.slice(0, 15)) call.cancel();
  await tick(100);
  t.is(service.watching().streams, 15);
  for (const call of calls.slice(15)) call.cancel();
  await tick(100);
  t.deepEqual(service.watching(), { streams: 0, names: 0 });
  // A connection that goes away (its streams not reset one by one) ends its streams too.
  const session = connect(`http://127.0.0.1:${port}`);
  session.on("error", () => undefined);
  for (let i = 0; i < 10; i++) rawWatch(session, "");
  await tick(150);
  t.is(service.watching().streams, 10);
  session.destroy();
  await tick(200);
  t.deepEqual(service.watching(), { streams: 0, names: 0 });
});

test("setStatus of a name not served throws: the set of names is fixed", (t) => {
  const h = new HealthService(["", VAULT], "SERVING");
  t.throws(() => h.setStatus("other", "NOT_SERVING"), { message: /not a served service name/ });
  t.notThrows(() => h.setStatus(VAULT, "NOT_SERVING"));
});

test("a watcher that is never read holds one status beyond its buffer, the latest, written once it drains", async (t) => {
  const h = new HealthService([""], "SERVING");
  let watch: ((call: unknown) => void) | undefined;
  h.addToServer({ addService: (_def: unknown, impl: { watch: (call: unknown) => void }) => { watch = impl.watch; } } as unknown as grpc.Server);
  const written: string[] = [];
  let release: (() => void) | undefined;
  const call = Object.assign(new Writable({
    objectMode: true,
    highWaterMark: 2,
    write(chunk: { status: string }, _enc, cb) {
      written.push(chunk.status);
      release = () => cb();
    },
  }), { request: { service: "" }, cancelled: false });
  watch!(call);
  for (let i = 0; i < 1000; i++) h.setStatus("", i % 2 === 0 ? "NOT_SERVING" : "SERVING");
  h.setStatus("", "NOT_SERVING");
  t.true(call.writableLength <= 2, `${call.writableLength} queued`);
  t.deepEqual(written, ["SERVING"]);
  // The caller reads: the queue drains, then the latest status follows.
  for (let i = 0; i < 5 && release !== undefined; i++) {
    const r = release;
    release = undefined;
    r();
    await tick(5);
  }
  t.is(written.at(-1), "NOT_SERVING");
  t.true(written.length <= 4, written.join());
  call.destroy();
  await tick(5);
  t.deepEqual(h.watching(), { streams: 0, names: 0 });
});

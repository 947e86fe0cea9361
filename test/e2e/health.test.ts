// grpc.health.v1 and server reflection on a real 3-node cluster: every node
// answers SERVING on its client and admin ports while it knows a leader, a
// node left alone turns NOT_SERVING (and a Watch stream sees it), a node
// whose HSM fails its periodic probe turns NOT_SERVING (and /readyz 503),
// and the admin port (only) lists its services through reflection. Names a
// port does not serve are NOT_FOUND / SERVICE_UNKNOWN, over-long ones
// INVALID_ARGUMENT (node/server/health-service.ts; test/server/health.test.ts).
import test from "ava";
import { readFileSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { LocalCluster, waitFor, reportLogsOnFailure } from "../../testkit/cluster.js";

reportLogsOnFailure(test);

type Port = "client" | "admin";
interface HealthClient extends grpc.Client {
  check(req: { service: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
}
interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] };
}
interface ReflectionClient extends grpc.Client {
  serverReflectionInfo(): grpc.ClientDuplexStream<object, ReflectionResponse>;
}

/** The client class of service `name` (dotted) in the .proto file at `path`. */
function clientClass(path: string, name: string): grpc.ServiceClientConstructor {
  let v: unknown = grpc.loadPackageDefinition(loadSync(path, { enums: String }));
  for (const part of name.split(".")) v = (v as Record<string, unknown>)[part];
  return v as grpc.ServiceClientConstructor;
}
const Health = clientClass(healthProtoPath, "grpc.health.v1.Health");
const reflectionDir = dirname(createRequire(import.meta.url).resolve("@grpc/reflection/package.json"));
const Reflection = clientClass(join(reflectionDir, "build/proto/grpc/reflection/v1/reflection.proto"), "grpc.reflection.v1.ServerReflection");

let cluster: LocalCluster;
const clients: grpc.Client[] = [];

test.before(async () => {
  cluster = await LocalCluster.start({ nodeConfig: { hsmProbeIntervalMs: 500 } });
});

test.after.always(async () => {
  for (const c of clients) c.close();
  await cluster?.close();
});

/** A client of `Ctor` for node `id`'s client port (TLS) or admin port (mTLS with node 1's certificate). */
function dial<T extends grpc.Client>(Ctor: grpc.ServiceClientConstructor, id: number, port: Port): T {
  const certs = join(cluster.dir, "certs");
  const ca = readFileSync(join(certs, "ca.crt"));
  const creds = port === "client"
    ? grpc.credentials.createSsl(ca)
    : grpc.credentials.createSsl(ca, readFileSync(join(certs, "node-1.key")), readFileSync(join(certs, "node-1.crt")));
  const c = new Ctor(cluster.node(id)[port], creds, { "grpc.ssl_target_name_override": `node-${id}` }) as unknown as T;
  clients.push(c);
  return c;
}

function check(id: number, port: Port, service = ""): Promise<string> {
  const c = dial<HealthClient>(Health, id, port);
  return new Promise((resolve, reject) => {
    c.check({ service }, { deadline: Date.now() + 3000 }, (err, res) => (err ? reject(err) : resolve(res?.status ?? "")));
  });
}

function listServices(id: number, port: Port): Promise<string[]> {
  const call = dial<ReflectionClient>(Reflection, id, port).serverReflectionInfo();
  return new Promise((resolve, reject) => {
    call.once("data", (res: ReflectionResponse) => {
      call.end();
      resolve((res.listServicesResponse?.service ?? []).map((s) => s.name).sort());
    });
    call.once("error", reject);
    call.write({ listServices: "*" });
  });
}

test.serial("every node is SERVING on its client and admin ports, overall and per service; unknown services are NOT_FOUND", async (t) => {
  for (const n of cluster.nodes) {
    t.is(await check(n.id, "client"), "SERVING", `node ${n.id} client port`);
    t.is(await check(n.id, "client", "bkv.v1.VaultService"), "SERVING");
    t.is(await check(n.id, "admin"), "SERVING", `node ${n.id} admin port`);
    t.is(await check(n.id, "admin", "bkv.v1.AdminService"), "SERVING");
  }
  const err = await t.throwsAsync(check(1, "client", "bkv.v1.NoSuchService"));
  t.is((err as grpc.ServiceError).code, grpc.status.NOT_FOUND);
});

/** The first status a Watch of `service` gets (the call is cancelled then), or the code it ends with. */
function watchFirst(id: number, port: Port, service: string): Promise<string | grpc.status> {
  const call = dial<HealthClient>(Health, id, port).watch({ service });
  return new Promise((resolve) => {
    call.once("data", (r: { status: string }) => { resolve(r.status); call.cancel(); });
    call.on("error", (e: grpc.ServiceError) => resolve(e.code));
  });
}

test.serial("both ports answer only their own service names: others NOT_FOUND / SERVICE_UNKNOWN, names over 256 bytes INVALID_ARGUMENT", async (t) => {
  const code = (p: Promise<string>) => p.then(() => grpc.status.OK, (e: grpc.ServiceError) => e.code);
  for (const port of ["client", "admin"] as const) { // the admin port with node 1's certificate (admin-auth.ts: health is open to it)
    const other = port === "client" ? "bkv.v1.AdminService" : "bkv.v1.VaultService";
    t.is(await code(check(1, port, other)), grpc.status.NOT_FOUND, port);
    t.is(await code(check(1, port, "x".repeat(257))), grpc.status.INVALID_ARGUMENT, port);
    t.is(await watchFirst(1, port, other), "SERVICE_UNKNOWN", port);
    t.is(await watchFirst(1, port, "x".repeat(257)), grpc.status.INVALID_ARGUMENT, port);
    t.is(await watchFirst(1, port, ""), "SERVING", port);
  }
});

test.serial("server reflection lists the admin port's services, and is not offered on the client port", async (t) => {
  const names = await listServices(1, "admin");
  t.true(names.includes("bkv.v1.AdminService"), names.join(","));
  t.true(names.includes("grpc.health.v1.Health"), names.join(","));
  t.false(names.includes("bkv.v1.VaultService"));
  const err = await t.throwsAsync(listServices(1, "client"));
  t.is((err as grpc.ServiceError).code, grpc.status.UNIMPLEMENTED);
});

test.serial("a node left alone turns NOT_SERVING (Check and Watch), and SERVING again once its peers are back", async (t) => {
  const alone = 3;
  const watch = dial<HealthClient>(Health, alone, "client").watch({ service: "" });
  const seen: string[] = [];
  watch.on("data", (r: { status: string }) => seen.push(r.status));
  watch.on("error", () => undefined);
  await waitFor(() => seen.at(-1) === "SERVING" || undefined, "the watch to start with SERVING");
  // Whatever fails below, the next tests get their cluster back.
  t.teardown(() => { for (const id of [1, 2]) if (cluster.node(id).proc === null) cluster.restart(id); });
  await Promise.all([cluster.stop(1), cluster.stop(2)]);
  // Election timeout here is 10 ticks of 50 ms; CheckQuorum or PreVote clear the known leader. A stopping
  // leader may hand node 3 the leadership first (TimeoutNow), so it can serve again for an election
  // timeout after a first NOT_SERVING: every port is asked in the same poll.
  const all = async () => [await check(alone, "client"), await check(alone, "admin"), await check(alone, "client", "bkv.v1.VaultService")];
  await waitFor(async () => (await all()).every((s) => s === "NOT_SERVING") || undefined, "node 3 NOT_SERVING on every port", 30_000);
  await waitFor(() => seen.at(-1) === "NOT_SERVING" || undefined, "the watch to see NOT_SERVING");
  cluster.restart(1);
  cluster.restart(2);
  await waitFor(async () => (await check(alone, "client")) === "SERVING" || undefined, "node 3 SERVING again", 60_000);
  await waitFor(() => seen.at(-1) === "SERVING" || undefined, "the watch to see SERVING again");
  watch.cancel();
  t.pass();
});

test.serial("a node whose HSM fails its probe turns NOT_SERVING on both ports and /readyz, and says why", async (t) => {
  const id = 1;
  const ready = async () => fetch(`http://${cluster.node(id).metrics}/readyz`).then(async (r) => ({ status: r.status, body: await r.text() }));
  await waitFor(async () => (await check(id, "client")) === "SERVING" || undefined, "node 1 SERVING", 30_000);
  t.is((await ready()).status, 200);
  // The token's files vanish under the running node: its next signature fails (CKR_OBJECT_HANDLE_INVALID).
  const tokens = join(cluster.dir, `hsm-${id}`, "tokens");
  for (const d of readdirSync(tokens)) rmSync(join(tokens, d), { recursive: true, force: true });
  await waitFor(async () => (await check(id, "client")) === "NOT_SERVING" || undefined, "node 1 NOT_SERVING", 30_000);
  t.is(await check(id, "admin"), "NOT_SERVING");
  const r = await ready();
  t.is(r.status, 503);
  t.regex(r.body, /not ready: HSM probe failing: .*CKR_OBJECT_HANDLE_INVALID/);
  const st = await cluster.status(id);
  t.false(st.serving);
  t.regex(st.hsmError, /CKR_/);
  t.regex(await cluster.metricsOf(id), /bkv_hsm_up\{node="1"\} 0/);
  // The other nodes serve on (once any election node 1's failure caused is over).
  await waitFor(async () => (await check(2, "client")) === "SERVING" || undefined, "node 2 to serve on", 30_000);
});

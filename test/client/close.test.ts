// close() of the SDK's VaultClient and of the AdminClient ends everything
// they opened: a script that closed its client exits by itself, even after
// talking to a node that accepted the TCP connection and never answers (a
// stopped process: its TLS handshake stays pending) or that never answers a
// call. Each case runs a real Node process (close-child.ts).
import test from "ava";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { G, encodePoint, nodeDescriptorMessage, randomScalar, signMessage } from "../../proto/crypto/index.js";
import { VaultService } from "../../proto/gen/bkv/v1/vault_pb.js";
import { serviceDefinition } from "../../proto/rpc.js";
import { type ClusterDescriptor, VaultClient, descriptorToJson } from "../../client/sdk/index.js";
import { FAST, FakeCluster, type FakeTls, makeFakeTls } from "./fake-cluster.js";

/** How long a child may take to exit after printing "closed". */
const EXIT_WITHIN_MS = 3_000;

let tls: FakeTls;
let certDir: string;

test.before(async () => {
  certDir = await mkdtemp(join(tmpdir(), "bkv-close-"));
  tls = await makeFakeTls(certDir);
});

test.after.always(async () => {
  await rm(certDir, { recursive: true, force: true });
});

interface ChildRun {
  result: Record<string, unknown>;
  /** ms from "closed" to the process's exit; undefined when it had to be killed. */
  exitedAfterMs: number | undefined;
  stderr: string;
}

/** Runs close-child.ts with `input`; kills it EXIT_WITHIN_MS after "closed" (or after 30 s). */
function runChild(input: object): Promise<ChildRun> {
  const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "close-child.ts")], {
    env: { ...process.env, BKV_CLOSE_TEST: JSON.stringify(input) },
  });
  let stdout = "";
  let stderr = "";
  let closedAt: number | undefined;
  let killed = false;
  const kill = () => {
    killed = true;
    child.kill("SIGKILL");
  };
  const overall = setTimeout(kill, 30_000);
  child.stdout.on("data", (b: Buffer) => {
    stdout += b.toString();
    if (closedAt === undefined && stdout.includes("\nclosed\n")) {
      closedAt = Date.now();
      setTimeout(kill, EXIT_WITHIN_MS).unref();
    }
  });
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => {
    child.on("exit", () => {
      clearTimeout(overall);
      const line = stdout.split("\n")[0] ?? "";
      const result = line.startsWith("{") ? JSON.parse(line) as Record<string, unknown> : {};
      resolve({ result, exitedAfterMs: killed || closedAt === undefined ? undefined : Date.now() - closedAt, stderr });
    });
  });
}

/** A TCP server that accepts every connection and never sends a byte (a stopped node process). */
async function silentServer(): Promise<{ address: string; stop: () => void }> {
  const held: net.Socket[] = [];
  const server = net.createServer((s) => held.push(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return { address: `127.0.0.1:${port}`, stop: () => { for (const s of held) s.destroy(); server.close(); } };
}

/** A plaintext gRPC server of VaultService that accepts every call and never answers it. */
async function hangingServer(): Promise<{ address: string; stop: () => void }> {
  const server = new grpc.Server();
  const never = () => {};
  const handlers = Object.fromEntries(VaultService.methods.map((m) => [m.localName, never]));
  server.addService(serviceDefinition(VaultService), handlers);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)));
  });
  return { address: `127.0.0.1:${port}`, stop: () => server.forceShutdown() };
}

/** `d` with node `nodeId` moved to `address`, its entry signed again with `identityKey`. */
function moved(d: ClusterDescriptor, nodeId: number, address: string, identityKey: bigint): ClusterDescriptor {
  return {
    ...d,
    nodes: d.nodes.map((n) => {
      if (n.nodeId !== nodeId) return n;
      const entry = { ...n, address };
      return { ...entry, signature: signMessage(identityKey, nodeDescriptorMessage({ clusterId: d.clusterId, ...entry })) };
    }),
  };
}

/** A one-node descriptor for `address`, with fresh keys. */
function oneNode(address: string): ClusterDescriptor {
  const identity = randomScalar();
  const entry = {
    nodeId: 1, address,
    agreementPublicKey: encodePoint(G.multiply(randomScalar()), false),
    identityPublicKey: encodePoint(G.multiply(identity), false),
  };
  const signature = signMessage(identity, nodeDescriptorMessage({ clusterId: "c1", ...entry }));
  return { version: 1, clusterId: "c1", threshold: 1, nodes: [{ ...entry, signature }] };
}

test("a script that recovered through a TLS cluster with one silent node exits by itself after close()", async (t) => {
  const cluster = await FakeCluster.start(3, 2, "close-test", tls);
  const silent = await silentServer();
  try {
    const writer = new VaultClient(cluster.descriptor(), FAST);
    const key = await writer.register("alice", "pw-close");
    writer.close();
    const node1 = cluster.nodes[0];
    if (node1 === undefined) throw new Error("no node 1");
    const descriptor = descriptorToJson(moved(cluster.descriptor(), 1, silent.address, node1.identityKey));
    const run = await runChild({ mode: "recover", descriptor, user: "alice", password: "pw-close", callTimeoutMs: 500 });
    t.is(run.result.key, Buffer.from(key).toString("hex"), run.stderr);
    t.not(run.exitedAfterMs, undefined, `the process did not exit within ${EXIT_WITHIN_MS} ms of close()`);
  } finally {
    silent.stop();
    cluster.stop();
  }
});

test("close() cancels a call in flight that a node never answers, and the script exits", async (t) => {
  const hanging = await hangingServer();
  try {
    const run = await runChild({ mode: "status-then-close", descriptor: descriptorToJson(oneNode(hanging.address)), callTimeoutMs: 60_000, closeAfterMs: 500 });
    t.regex(String((run.result.errors as string[] | undefined)?.[0]), /CANCELLED/, run.stderr);
    t.not(run.exitedAfterMs, undefined, `the process did not exit within ${EXIT_WITHIN_MS} ms of close()`);
  } finally {
    hanging.stop();
  }
});

test("an admin script whose node accepted the connection and never answers exits by itself after close()", async (t) => {
  const silent = await silentServer();
  try {
    const run = await runChild({ mode: "admin", callTimeoutMs: 500, admin: { endpoint: silent.address, ca: tls.ca, cert: tls.cert, key: tls.key } });
    t.regex(String(run.result.error), /DEADLINE_EXCEEDED/, run.stderr);
    t.not(run.exitedAfterMs, undefined, `the process did not exit within ${EXIT_WITHIN_MS} ms of close()`);
  } finally {
    silent.stop();
  }
});

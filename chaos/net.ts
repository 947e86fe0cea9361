// Helpers every chaos target uses to reach nodes: free loopback ports,
// polling with a deadline, vault and admin gRPC channels, and the conversion
// of the nodes' answers into the target's view (chaos/target.ts).
import { type TokenProvider, bearerInterceptor } from "../client/sdk/index.js";
import { readFileSync } from "node:fs";
import { type Server, createServer } from "node:net";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { AdminService } from "../proto/gen/bkv/v1/admin_pb.js";
import { VaultService } from "../proto/gen/bkv/v1/vault_pb.js";
import { unaryClient } from "../proto/rpc.js";
import type { NodeRecord, NodeStatus } from "./target.js";

const FREE_PORT_LOW = 20_000;
const FREE_PORT_HIGH = 32_000;

/**
 * A port free on 127.0.0.1 now and reserved for this process (reservePort),
 * chosen at random below the kernel's ephemeral range (32768-60999 here). A
 * port the kernel hands out (bind to 0, an outgoing connection) is soon handed
 * to another process again, and a node restarted on its old port found it
 * taken by another test's cluster (test files run in parallel); random ports
 * of a range the kernel never hands out rarely meet, and the reservation
 * keeps two processes from choosing the same one while neither has bound it.
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; ; tries++) {
    const port = FREE_PORT_LOW + Math.floor(Math.random() * (FREE_PORT_HIGH - FREE_PORT_LOW));
    if (await reservePort(port)) {
      if (await canListen(port)) return port;
      await releasePort(port);
    }
    if (tries >= 100) throw new Error(`no free port found in ${FREE_PORT_LOW}-${FREE_PORT_HIGH} after 100 tries`);
  }
}

const reserved = new Map<number, Server>();

/**
 * Reserves `port` for this process until it ends or releases it: false when
 * another process, or this one, holds it already. A port chosen by one test
 * process stays unbound until its node starts, seconds later under load; in
 * that window another process's freePort found it free too, and one node
 * failed with EADDRINUSE (a CI run lost a chaos test so). The reservation is
 * a listening socket in Linux's abstract namespace named after the port:
 * every process on the machine sees it, and the kernel drops it when the
 * process ends, however it ends. It reserves among the processes that ask,
 * not against other programs. Elsewhere than Linux: always true.
 */
export async function reservePort(port: number): Promise<boolean> {
  if (process.platform !== "linux") return true;
  if (reserved.has(port)) return false;
  const server = createServer();
  const ok = await new Promise<boolean>((res) => {
    server.once("error", () => res(false));
    server.listen({ path: `\0bkv-test-port-${port}` }, () => res(true));
  });
  if (!ok) {
    server.close();
    return false;
  }
  server.unref();
  reserved.set(port, server);
  return true;
}

/** Ends this process's reservation of `port` (a no-op if it holds none). */
export function releasePort(port: number): Promise<void> {
  const server = reserved.get(port);
  reserved.delete(port);
  return new Promise((res) => (server === undefined ? res() : server.close(() => res())));
}

/** Whether 127.0.0.1:`port` can be bound now. */
export function canListen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once("error", () => res(false));
    s.listen(port, "127.0.0.1", () => s.close(() => res(true)));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(f: () => Promise<T | undefined>, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(100);
  }
}

/**
 * A vault client channel to `address` checking the server's certificate against `ca` under the name
 * `serverName` (default: the address's host, as the SDK does).
 */
export function vaultChannel(address: string, ca: Buffer, serverName?: string, token?: TokenProvider) {
  const opts = {
    ...(serverName === undefined ? {} : { "grpc.ssl_target_name_override": serverName }),
    ...(token === undefined ? {} : { interceptors: [bearerInterceptor(token)] }),
  };
  const { client, channel } = unaryClient(VaultService, address, grpc.credentials.createSsl(ca), opts);
  return { client, close: () => channel.close() };
}

/** An admin channel to node `id` at `address`, with node `id`'s certificate from `certDir` (mTLS; the server is checked as node-<id>). */
export function adminChannel(address: string, certDir: string, id: number) {
  const creds = grpc.credentials.createSsl(readFileSync(join(certDir, "ca.crt")), readFileSync(join(certDir, `node-${id}.key`)), readFileSync(join(certDir, `node-${id}.crt`)));
  const { client, channel } = unaryClient(AdminService, address, creds, { "grpc.ssl_target_name_override": `node-${id}` });
  return { client, close: () => channel.close() };
}

/** The runner's view of a GetClusterStatus answer. */
export function nodeStatus(s: { nodeId: bigint; leaderId: bigint; commitIndex: bigint; appliedIndex: bigint; stateDigest: Uint8Array; stateDigestIndex: bigint }): NodeStatus {
  const st: NodeStatus = { nodeId: Number(s.nodeId), leaderId: Number(s.leaderId), commitIndex: Number(s.commitIndex), appliedIndex: Number(s.appliedIndex) };
  if (s.stateDigest.length > 0) st.stateDigest = { digest: Buffer.from(s.stateDigest).toString("hex"), index: Number(s.stateDigestIndex) };
  return st;
}

type VaultHandle = ReturnType<typeof vaultChannel>;

/**
 * The node's own view of a record: a stale GetRecordInfo (its applied state, no ReadIndex) through a
 * vault client handle (closed afterwards); null on NOT_FOUND. The counters checker checks node views
 * per node (they may lag, never go back); a linearizable read would time out on a cut-off node and show nothing.
 */
export async function readRecordVia(v: Pick<VaultHandle, "client" | "close">, user: string): Promise<NodeRecord | null> {
  try {
    const r = await v.client.getRecordInfo({ userId: user, stale: true }, { deadline: new Date(Date.now() + 1500) });
    return { version: r.version, attemptsRemaining: r.attemptsRemaining, locked: r.locked, digest: Buffer.from(r.recordDigest).toString("hex"), appliedIndex: Number(r.appliedIndex) };
  } catch (err) {
    if ((err as { code?: number }).code === grpc.status.NOT_FOUND) return null;
    throw err;
  } finally {
    v.close();
  }
}

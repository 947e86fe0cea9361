// Shared fixtures for transport tests: certificates made by
// deploy/certs/make-certs.sh in a temp dir, a gRPC server bound with mTLS
// on 127.0.0.1, and transports on 127.0.0.1 that record what they receive
// and report.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { Transport, devCertFiles, loadTls, type TransportOptions } from "../../node/transport/index.js";
import { MessageType, message, type Message, type NodeId } from "../../node/raft/types.js";

const SCRIPT = fileURLToPath(new URL("../../deploy/certs/make-certs.sh", import.meta.url));

/** A temp dir with a fresh CA and certificates for `ids` (node ids, or names such as "operator"). */
export function makeCerts(ids: readonly (NodeId | string)[]): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "bkv-certs-"));
  execFileSync("bash", [SCRIPT, dir, ...ids.map(String)], { stdio: "ignore" });
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Binds `server` to a free port of 127.0.0.1 with mTLS as node `id` of the certificates in `dir`; resolves with its address. */
export async function bindMtls(server: grpc.Server, dir: string, id: NodeId): Promise<string> {
  const pem = (name: string) => readFileSync(join(dir, name));
  const creds = grpc.ServerCredentials.createSsl(pem("ca.crt"), [{ private_key: pem(`node-${id}.key`), cert_chain: pem(`node-${id}.crt`) }], true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", creds, (err, p) => (err ? reject(err) : resolve(p))));
  return `127.0.0.1:${port}`;
}

export interface TestNode {
  readonly id: NodeId;
  readonly transport: Transport;
  readonly received: Message[];
  readonly unreachable: NodeId[];
  readonly snapshots: Array<[NodeId, boolean]>;
}

export const FAST_BACKOFF = { initialMs: 20, maxMs: 200, multiplier: 2 };

export function makeNode(
  id: NodeId, certDir: string, overrides: Partial<TransportOptions> = {},
): TestNode {
  const received: Message[] = [];
  const unreachable: NodeId[] = [];
  const snapshots: Array<[NodeId, boolean]> = [];
  const transport = new Transport({
    nodeId: id, clusterId: "test-cluster", listenAddress: "127.0.0.1:0",
    tls: overrides.tls ?? loadTls(devCertFiles(certDir, id)),
    onMessage: (m) => received.push(m),
    reportUnreachable: (p) => unreachable.push(p),
    reportSnapshot: (p, ok) => snapshots.push([p, ok]),
    backoff: FAST_BACKOFF, connectTimeoutMs: 2000,
    ...overrides,
  });
  return { id, transport, received, unreachable, snapshots };
}

/** Starts `a` and `b` and makes each the other's peer. */
export async function connectPair(a: TestNode, b: TestNode): Promise<void> {
  const [addrA, addrB] = await Promise.all([a.transport.start(), b.transport.start()]);
  a.transport.addPeer(b.id, addrB);
  b.transport.addPeer(a.id, addrA);
}

/** Polls `cond` until it holds; fails after `timeoutMs` (a liveness bound, not a timing assertion). */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function heartbeat(from: NodeId, to: NodeId, term = 1, commit = 0): Message {
  return message({ type: MessageType.Heartbeat, from, to, term, commit });
}

const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);

/** One message of every wire type, with the fields that type uses. */
export function everyWireMessage(from: NodeId, to: NodeId): Message[] {
  const confState = { voters: [1, 2, 3], learners: [4] };
  const entries = [
    { term: 3, index: 10, type: 0, data: new Uint8Array(0) },
    { term: 3, index: 11, type: 0, data: bytes(1, 2, 3, 255) },
    { term: 3, index: 12, type: 1, data: bytes(9, 9) },
  ];
  const f = { from, to, term: 3 };
  return [
    message({ ...f, type: MessageType.Prop, term: 0, entries: [{ term: 0, index: 0, type: 0, data: bytes(7) }] }),
    message({ ...f, type: MessageType.App, logTerm: 2, index: 9, commit: 8, entries }),
    message({ ...f, type: MessageType.AppResp, index: 12 }),
    message({ ...f, type: MessageType.AppResp, index: 9, reject: true, rejectHint: 5, logTerm: 2 }),
    message({ ...f, type: MessageType.Heartbeat, commit: 11, context: bytes(0xaa) }),
    message({ ...f, type: MessageType.HeartbeatResp, context: bytes(0xaa) }),
    message({ ...f, type: MessageType.PreVote, term: 4, logTerm: 3, index: 12, context: bytes(1) }),
    message({ ...f, type: MessageType.PreVoteResp, term: 4, reject: true }),
    message({ ...f, type: MessageType.Vote, term: 4, logTerm: 3, index: 12 }),
    message({ ...f, type: MessageType.VoteResp, term: 4 }),
    message({
      ...f, type: MessageType.Snap,
      snapshot: { metadata: { index: 100, term: 3, confState }, totalSize: 10, offset: 4, data: bytes(5, 6, 7), done: false },
    }),
    message({
      ...f, type: MessageType.Snap,
      snapshot: { metadata: { index: 100, term: 3, confState }, totalSize: 10, offset: 7, data: bytes(8, 9, 10), done: true },
    }),
    message({ ...f, type: MessageType.SnapResp, index: 100, reject: false }),
    message({ ...f, type: MessageType.TransferLeader }),
    message({ ...f, type: MessageType.TimeoutNow }),
    message({ ...f, type: MessageType.ReadIndex, context: bytes(1, 2, 3, 4, 5, 6, 7, 8) }),
    message({ ...f, type: MessageType.ReadIndexResp, index: 12, context: bytes(1, 2, 3, 4, 5, 6, 7, 8) }),
    message({ ...f, type: MessageType.App, term: Number.MAX_SAFE_INTEGER, index: Number.MAX_SAFE_INTEGER - 1 }),
  ];
}

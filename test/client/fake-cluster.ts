// An in-process fake of a vault cluster for client tests: N gRPC servers on
// 127.0.0.1 serving vault.proto over ONE shared in-memory state (standing in
// for Raft + the state machine), with real protocol crypto (pure-JS keys in
// place of tokens). Faults are injected per node and per method.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import {
  G,
  type RegistrationRecord,
  decodePoint,
  encodePoint,
  evaluationSigningMessage,
  nodeDescriptorMessage,
  randomScalar,
  recordDigest,
  signMessage,
  unwrapShareForTest,
  verifyConfirm,
  verifyDelete,
  verifyOverwrite,
} from "../../proto/crypto/index.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { ClusterDescriptorSchema, VaultService } from "../../proto/gen/bkv/v1/vault_pb.js";
import { type ImplementationOf, errorWithDetail, serviceDefinition } from "../../proto/rpc.js";
import type { ClusterDescriptor } from "../../client/sdk/descriptor.js";
import { type ClientWarning, VaultClient, type VaultClientOptions } from "../../client/sdk/index.js";

export const TEST_SCRYPT = { N: 1 << 10, r: 8, p: 1 };

/** Client options for a fake cluster: test scrypt cost, short retries and read-back. */
export const FAST: VaultClientOptions = { scrypt: TEST_SCRYPT, retry: { deadlineMs: 3_000, callTimeoutMs: 1_000, baseDelayMs: 5, maxDelayMs: 20 }, readBackTimeoutMs: 2_000 };

/** Runs `body` against a fresh 3-node fake cluster (t = 2) and a FAST client that records its warnings; both closed after. */
export async function withCluster(body: (c: FakeCluster, client: VaultClient, warnings: ClientWarning[]) => Promise<void>): Promise<void> {
  const warnings: ClientWarning[] = [];
  const cluster = await FakeCluster.start(3, 2);
  const client = new VaultClient(cluster.descriptor(), { ...FAST, onWarning: (w) => warnings.push(w) });
  try {
    await body(cluster, client, warnings);
  } finally {
    client.close();
    cluster.stop();
  }
}

export interface FakeNode {
  id: number;
  address: string;
  agreementKey: bigint;
  identityKey: bigint;
  server: grpc.Server;
}

interface StoredRecord {
  record: RegistrationRecord;
  digest: Uint8Array;
  attempts: number;
  locked: boolean;
  pending: Map<bigint, Uint8Array>;
}

export interface Call {
  node: number;
  method: string;
  requestId?: string;
}

/** Returns an error to answer instead of serving, or undefined to serve normally. */
export type Fault = (method: string, request: { requestId?: Uint8Array }) => grpc.ServiceError | undefined;

/** PEM strings of a CA and one server certificate valid for 127.0.0.1. */
export interface FakeTls {
  ca: string;
  cert: string;
  key: string;
}

/** A fresh CA and node 1's certificate in `dir`, made by deploy/certs/make-certs.sh (the operator's script). */
export async function makeFakeTls(dir: string): Promise<FakeTls> {
  await promisify(execFile)("bash", [join(process.cwd(), "deploy/certs/make-certs.sh"), dir, "1"]);
  const read = (f: string) => readFile(join(dir, f), "utf8");
  return { ca: await read("ca.crt"), cert: await read("node-1.crt"), key: await read("node-1.key") };
}

export type EvaluationFault = "wrong-point" | "bad-signature";

type Unary = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => void;

export class FakeCluster {
  readonly nodes: FakeNode[] = [];
  readonly calls: Call[] = [];
  readonly records = new Map<string, StoredRecord>();
  private readonly outcomes = new Map<string, unknown>();
  private readonly faults = new Map<number, Fault>();
  readonly evaluationFaults = new Map<number, EvaluationFault>();
  /** As a state from before bound shares: a registration with a bound share (wrap blob v2) is refused BOUND_SHARES_NOT_ACTIVE. */
  unboundSharesOnly = false;
  /** When set, mutating calls on other nodes answer NOT_LEADER with this node's id and address. */
  leaderId: number | undefined;
  /** The leader address NOT_LEADER names (default: the leader's own): e.g. an in-cluster name the client cannot reach. */
  leaderHint: ((leaderId: number) => string) | undefined;
  /** Replaces the digest a node serves in GetRecordInfo (a lying node). */
  readonly servedDigest = new Map<number, Uint8Array>();
  /** Rewrites a node's GetRecordInfo answer (a lying node): gets the honest answer's fields, returns the ones to serve. */
  readonly servedInfo = new Map<number, (info: Record<string, unknown>) => Record<string, unknown>>();
  private index = 0n;

  private constructor(readonly clusterId: string, readonly threshold: number, private readonly tls?: FakeTls) {}

  /** With `tls`, every node serves the client API over TLS (no client certificates, like bkv-node). */
  static async start(n = 3, threshold = 2, clusterId = "test-cluster", tls?: FakeTls): Promise<FakeCluster> {
    const c = new FakeCluster(clusterId, threshold, tls);
    for (let id = 1; id <= n; id++) c.nodes.push(await c.startNode(id));
    return c;
  }

  private async startNode(id: number): Promise<FakeNode> {
    const server = new grpc.Server();
    const node: FakeNode = { id, address: "", agreementKey: randomScalar(), identityKey: randomScalar(), server };
    server.addService(serviceDefinition(VaultService), this.implementation(node));
    const port = await new Promise<number>((res, rej) => {
      const creds = this.tls === undefined
        ? grpc.ServerCredentials.createInsecure()
        : grpc.ServerCredentials.createSsl(Buffer.from(this.tls.ca), [{ private_key: Buffer.from(this.tls.key), cert_chain: Buffer.from(this.tls.cert) }], false);
      server.bindAsync("127.0.0.1:0", creds, (e, p) => (e ? rej(e) : res(p)));
    });
    node.address = `127.0.0.1:${port}`;
    return node;
  }

  descriptor(): ClusterDescriptor {
    return {
      version: 1, clusterId: this.clusterId, threshold: this.threshold, tlsCa: this.tls?.ca,
      nodes: this.nodes.map((n) => {
        const entry = {
          nodeId: n.id, address: n.address,
          agreementPublicKey: encodePoint(G.multiply(n.agreementKey), false),
          identityPublicKey: encodePoint(G.multiply(n.identityKey), false),
        };
        return { ...entry, signature: signMessage(n.identityKey, nodeDescriptorMessage({ clusterId: this.clusterId, ...entry })) };
      }),
    };
  }

  /** Injects a fault on a node (replaces any previous one). */
  fault(nodeId: number, f: Fault | undefined): void {
    if (f === undefined) this.faults.delete(nodeId);
    else this.faults.set(nodeId, f);
  }

  callsOf(method: string): Call[] {
    return this.calls.filter((c) => c.method === method);
  }

  async stopNode(nodeId: number): Promise<void> {
    const node = this.nodes.find((n) => n.id === nodeId);
    node?.server.forceShutdown();
  }

  stop(): void {
    for (const n of this.nodes) n.server.forceShutdown();
  }

  private implementation(node: FakeNode): ImplementationOf<typeof VaultService> {
    const wrap = (local: keyof typeof VaultService.method, mutating: boolean, serve: (req: never) => unknown): Unary => (call, cb) => {
      const method = VaultService.method[local].name;
      const output = VaultService.method[local].output;
      const req = call.request as { requestId?: Uint8Array };
      this.calls.push({ node: node.id, method, ...(req.requestId ? { requestId: Buffer.from(req.requestId).toString("hex") } : {}) });
      const injected = this.faults.get(node.id)?.(method, req);
      if (injected) return cb(injected);
      if (mutating && this.leaderId !== undefined && this.leaderId !== node.id) {
        const leader = this.nodes.find((n) => n.id === this.leaderId);
        return cb(errorWithDetail(grpc.status.UNAVAILABLE, "not the leader", {
          reason: ErrorReason.NOT_LEADER, leaderId: BigInt(this.leaderId), leaderAddress: this.leaderHint?.(this.leaderId) ?? leader?.address ?? "",
        }));
      }
      try {
        const res = mutating ? this.once(req.requestId, () => serve(req as never)) : serve(req as never);
        cb(null, create(output as never, res as never));
      } catch (err) {
        cb(err as grpc.ServiceError);
      }
    };
    return {
      register: wrap("register", true, (r) => this.register(r)),
      getRecordInfo: wrap("getRecordInfo", false, (r) => this.getRecordInfo(node, r)),
      beginRecovery: wrap("beginRecovery", true, (r) => this.beginRecovery(r)),
      evaluate: wrap("evaluate", false, (r) => this.evaluate(node, r)),
      confirmRecovery: wrap("confirmRecovery", true, (r) => this.confirm(r)),
      delete: wrap("delete", true, (r) => this.delete(r)),
      getClusterDescriptor: wrap("getClusterDescriptor", false, () => this.clusterDescriptor()),
    } as unknown as ImplementationOf<typeof VaultService>;
  }

  /** Exactly-once by request id: a retry gets the first outcome (success or error). */
  private once(requestId: Uint8Array | undefined, f: () => unknown): unknown {
    const key = Buffer.from(requestId ?? new Uint8Array()).toString("hex");
    if (!this.outcomes.has(key)) {
      try {
        this.outcomes.set(key, { ok: f() });
      } catch (err) {
        this.outcomes.set(key, { err });
      }
    }
    const o = this.outcomes.get(key) as { ok?: unknown; err?: unknown };
    if ("err" in o) throw o.err;
    return o.ok;
  }

  private register(r: RegisterReq): unknown {
    const record: RegistrationRecord = {
      user: r.userId, version: r.version, threshold: r.threshold, guessLimit: r.guessLimit,
      shares: r.shares.map((s) => ({ nodeId: Number(s.nodeId), publicShare: s.publicShare, wrappedShare: s.wrappedShare })),
      ciphertext: r.ciphertext, resetPublicKey: r.resetPublicKey, salt: r.salt,
      scrypt: { N: r.scryptParams?.n ?? 0, r: r.scryptParams?.r ?? 0, p: r.scryptParams?.p ?? 0 },
    };
    if (this.unboundSharesOnly && record.shares.some((s) => s.wrappedShare[0] !== 1)) {
      throw fail(grpc.status.FAILED_PRECONDITION, "bound shares are not active in this cluster", ErrorReason.BOUND_SHARES_NOT_ACTIVE);
    }
    const digest = recordDigest(record);
    const current = this.records.get(r.userId);
    if (current === undefined && record.version !== 1) throw fail(grpc.status.NOT_FOUND, "no record", ErrorReason.RECORD_NOT_FOUND);
    if (current !== undefined) {
      if (record.version === 1) throw fail(grpc.status.ALREADY_EXISTS, "record exists", ErrorReason.UNSPECIFIED);
      const ref = { clusterId: this.clusterId, user: r.userId, version: current.record.version };
      if (record.version !== ref.version + 1 || !verifyOverwrite(current.record.resetPublicKey, ref, digest, r.ownerSignature)) {
        throw fail(grpc.status.PERMISSION_DENIED, "bad owner signature", ErrorReason.BAD_SIGNATURE);
      }
    }
    this.records.set(r.userId, { record, digest, attempts: 0, locked: false, pending: new Map() });
    return { version: record.version, attemptsRemaining: record.guessLimit, recordDigest: digest };
  }

  private stored(user: string): StoredRecord {
    const s = this.records.get(user);
    if (s === undefined) throw fail(grpc.status.NOT_FOUND, `no record for this user`, ErrorReason.RECORD_NOT_FOUND);
    return s;
  }

  private getRecordInfo(node: FakeNode, r: { userId: string }): unknown {
    const honest = this.honestRecordInfo(node, r.userId);
    return this.servedInfo.get(node.id)?.(honest) ?? honest;
  }

  private honestRecordInfo(node: FakeNode, user: string): Record<string, unknown> {
    const s = this.stored(user);
    const rec = s.record;
    return {
      userId: rec.user, version: rec.version, threshold: rec.threshold, guessLimit: rec.guessLimit,
      attemptsRemaining: rec.guessLimit - s.attempts, locked: s.locked, salt: rec.salt,
      scryptParams: { n: rec.scrypt.N, r: rec.scrypt.r, p: rec.scrypt.p }, ciphertext: rec.ciphertext, resetPublicKey: rec.resetPublicKey,
      publicShares: s.locked ? [] : rec.shares.map((x) => ({ nodeId: BigInt(x.nodeId), publicShare: x.publicShare })),
      recordDigest: this.servedDigest.get(node.id) ?? s.digest, appliedIndex: this.index,
    };
  }

  private beginRecovery(r: { userId: string; blindedElement: Uint8Array }): unknown {
    const s = this.stored(r.userId);
    if (s.locked) throw fail(grpc.status.FAILED_PRECONDITION, "record is locked", ErrorReason.RECORD_LOCKED, 0);
    if (s.attempts >= s.record.guessLimit) {
      s.locked = true;
      s.pending.clear();
      throw fail(grpc.status.RESOURCE_EXHAUSTED, "guess limit reached: the record is destroyed", ErrorReason.RECORD_LOCKED, 0);
    }
    s.attempts++;
    const attemptId = ++this.index;
    s.pending.set(attemptId, r.blindedElement);
    return { attemptId, attemptsRemaining: s.record.guessLimit - s.attempts, version: s.record.version };
  }

  private evaluate(node: FakeNode, r: { userId: string; attemptId: bigint }): unknown {
    const s = this.stored(r.userId);
    const B = s.pending.get(r.attemptId);
    if (B === undefined) throw fail(grpc.status.FAILED_PRECONDITION, "no such pending attempt", ErrorReason.ATTEMPT_NOT_FOUND);
    const share = s.record.shares.find((x) => x.nodeId === node.id);
    if (share === undefined) throw fail(grpc.status.FAILED_PRECONDITION, "no share here", ErrorReason.UNSPECIFIED);
    const k = unwrapShareForTest(share.wrappedShare, node.agreementKey);
    const fault = this.evaluationFaults.get(node.id);
    const point = fault === "wrong-point" ? G.multiply(randomScalar()) : decodePoint(B).multiply(k);
    const evaluated = encodePoint(point);
    const fields = { clusterId: this.clusterId, user: r.userId, version: s.record.version, attemptId: r.attemptId, nodeId: node.id, blinded: B, evaluated };
    const signature = signMessage(fault === "bad-signature" ? randomScalar() : node.identityKey, evaluationSigningMessage(fields));
    return {
      nodeId: BigInt(node.id), blindedElement: B, evaluatedElement: evaluated, signature,
      version: s.record.version, attemptsRemaining: s.record.guessLimit - s.attempts,
    };
  }

  private confirm(r: { userId: string; version: number; attemptId: bigint; signature: Uint8Array }): unknown {
    const s = this.stored(r.userId);
    if (!s.pending.has(r.attemptId)) throw fail(grpc.status.FAILED_PRECONDITION, "no such pending attempt", ErrorReason.ATTEMPT_NOT_FOUND);
    const ref = { clusterId: this.clusterId, user: r.userId, version: s.record.version };
    if (!verifyConfirm(s.record.resetPublicKey, ref, r.attemptId, r.signature)) {
      throw fail(grpc.status.PERMISSION_DENIED, "bad confirmation signature", ErrorReason.BAD_SIGNATURE);
    }
    s.attempts = 0;
    s.pending.clear();
    return { attemptsRemaining: s.record.guessLimit };
  }

  private delete(r: { userId: string; version: number; ownerSignature: Uint8Array }): unknown {
    const s = this.stored(r.userId);
    const ref = { clusterId: this.clusterId, user: r.userId, version: r.version };
    if (r.version !== s.record.version || !verifyDelete(s.record.resetPublicKey, ref, r.ownerSignature)) {
      throw fail(grpc.status.PERMISSION_DENIED, "bad owner signature", ErrorReason.BAD_SIGNATURE);
    }
    this.records.delete(r.userId);
    return {};
  }

  private clusterDescriptor(): unknown {
    const d = this.descriptor();
    return {
      descriptor: create(ClusterDescriptorSchema, {
        clusterId: d.clusterId, threshold: d.threshold,
        nodes: d.nodes.map((n) => ({ ...n, nodeId: BigInt(n.nodeId) })),
      }),
    };
  }
}

type RegisterReq = import("../../proto/gen/bkv/v1/vault_pb.js").RegisterRequest;

export function fail(code: grpc.status, message: string, reason: ErrorReason, attemptsRemaining?: number): grpc.ServiceError {
  return errorWithDetail(code, message, { reason, ...(attemptsRemaining === undefined ? {} : { attemptsRemaining }) }) as unknown as grpc.ServiceError;
}

/** A fault that answers UNAVAILABLE (no leader hint) to `method` for its first `times` calls. */
export function unavailableTimes(method: string, times: number): Fault {
  let left = times;
  return (m) => {
    if (m !== method || left <= 0) return undefined;
    left--;
    return fail(grpc.status.UNAVAILABLE, "node is restarting", ErrorReason.OVERLOADED);
  };
}

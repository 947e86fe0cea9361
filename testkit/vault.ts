// Builders of real vault commands for node/vault tests: real registrations
// (proto/crypto createRegistration) and real signatures.
import type { ExecutionContext } from "ava";
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import {
  G,
  type Registration,
  type ScryptParams,
  createRegistration,
  encodePoint,
  nodeDescriptorMessage,
  signConfirm,
  signDelete,
  signMessage,
} from "../proto/crypto/index.js";
import {
  type ApplyOutcome, type Command, type IssuerPolicy, type NodeAnnouncement, type VaultCode, type VaultReason, type VaultResult, VaultStateMachine, encodeCommand,
  keysFromJwks,
} from "../node/vault/index.js";
import { PREFIX, tableRange } from "../node/vault/keys.js";

export const CLUSTER = "vault-test";
export const VOTERS: readonly number[] = [1, 2, 3];
export const TEST_SCRYPT: ScryptParams = { N: 1 << 10, r: 8, p: 1 };

export interface TestNode {
  id: number;
  agreementPrivateKey: bigint;
  agreementPublicKey: Uint8Array;
  identityPrivateKey: bigint;
  identityPublicKey: Uint8Array;
}

/** Nodes with fixed keys (scalars derived from the id), so tests are reproducible. */
export function makeNode(id: number, salt = 0n): TestNode {
  const a = 1000n + BigInt(id) * 7n + salt;
  const i = 5000n + BigInt(id) * 13n + salt;
  return {
    id,
    agreementPrivateKey: a,
    agreementPublicKey: encodePoint(G.multiply(a), false),
    identityPrivateKey: i,
    identityPublicKey: encodePoint(G.multiply(i), false),
  };
}

export const NODES: readonly TestNode[] = VOTERS.map((id) => makeNode(id));

export function register(user: string, opts: { guessLimit?: number; version?: number; previous?: Registration; nodes?: readonly TestNode[]; threshold?: number; backupKey?: Uint8Array } = {}): Registration {
  return createRegistration({
    clusterId: CLUSTER,
    user,
    password: `pw-of-${user}`,
    backupKey: opts.backupKey ?? new Uint8Array(randomBytes(32)),
    threshold: opts.threshold ?? 2,
    guessLimit: opts.guessLimit ?? 3,
    nodes: (opts.nodes ?? NODES).map((n) => ({ id: n.id, agreementPublicKey: n.agreementPublicKey })),
    scrypt: TEST_SCRYPT,
    ...(opts.version === undefined ? {} : { version: opts.version }),
    ...(opts.previous === undefined ? {} : { previousResetPrivateKey: opts.previous.resetPrivateKey }),
  });
}

let counter = 0;
/** A fresh 16-byte request id (deterministic: a counter). */
export function newRequestId(): Uint8Array {
  counter += 1;
  const id = new Uint8Array(16);
  new DataView(id.buffer).setUint32(12, counter);
  id[0] = 0xaa;
  return id;
}

/** A valid blinded element: s·G for a small scalar. */
export function blindedPoint(s: number): Uint8Array {
  return encodePoint(G.multiply(BigInt(s) + 1n));
}

export type CommandOf<K extends Command["kind"]> = Extract<Command, { kind: K }>;

export function registerCmd(reg: Registration, requestId = newRequestId()): CommandOf<"register"> {
  return { kind: "register", requestId, record: reg.record, ownerSignature: reg.ownerSignature ?? new Uint8Array(0) };
}

export function beginCmd(user: string, blinded = blindedPoint(7), requestId = newRequestId()): CommandOf<"begin"> {
  return { kind: "begin", requestId, user, blinded };
}

export function confirmCmd(reg: Registration, attemptId: number, opts: { version?: number; key?: bigint; requestId?: Uint8Array } = {}): CommandOf<"confirm"> {
  const version = opts.version ?? reg.record.version;
  const user = reg.record.user;
  const signature = signConfirm(opts.key ?? reg.resetPrivateKey, { clusterId: CLUSTER, user, version }, attemptId);
  return { kind: "confirm", requestId: opts.requestId ?? newRequestId(), user, version, attemptId, signature };
}

export function deleteCmd(reg: Registration, opts: { key?: bigint; version?: number } = {}): CommandOf<"delete"> {
  const version = opts.version ?? reg.record.version;
  const user = reg.record.user;
  const signature = signDelete(opts.key ?? reg.resetPrivateKey, { clusterId: CLUSTER, user, version });
  return { kind: "delete", requestId: newRequestId(), user, version, signature };
}

export function announcement(node: TestNode, address = `127.0.0.1:${7000 + node.id}`, signer = node.identityPrivateKey): NodeAnnouncement {
  const fields = { clusterId: CLUSTER, nodeId: node.id, address, agreementPublicKey: node.agreementPublicKey, identityPublicKey: node.identityPublicKey };
  return {
    nodeId: node.id,
    clientAddress: address,
    agreementPublicKey: node.agreementPublicKey,
    identityPublicKey: node.identityPublicKey,
    signature: signMessage(signer, nodeDescriptorMessage(fields)),
  };
}

/** A state machine with its own log position. */
export class Harness {
  index = 1; // the bootstrap snapshot is index 1
  constructor(readonly sm: VaultStateMachine = new VaultStateMachine({ clusterId: CLUSTER })) {}

  apply(c: Command | Uint8Array, voters: readonly number[] = VOTERS): ApplyOutcome {
    this.index += 1;
    return this.sm.apply(this.index, c instanceof Uint8Array ? c : encodeCommand(c), voters);
  }
  result(c: Command | Uint8Array, voters: readonly number[] = VOTERS): VaultResult {
    return this.apply(c, voters).result;
  }
}

/** Issuer keys of one fresh ES256 key, so that apply checks client tokens (the tests' registrations carry none). */
export function issuerPolicy(): IssuerPolicy {
  const jwk = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "jwk" });
  return { clockSkewSec: 30, maxTokenLifetimeSec: 600, issuers: [{ iss: "accounts", setTime: 0, keys: keysFromJwks({ keys: [{ ...jwk, kid: "k1" }] }) }] };
}

/**
 * A harness over a state as a release before bound shares made it
 * (boundSharesOnly false): what legacy snapshot formats, which do not carry
 * the flag, convert back into.
 */
export function legacyHarness(): Harness {
  return new Harness(new VaultStateMachine({ clusterId: CLUSTER, boundSharesOnly: false }));
}

export function expectOk<K extends Extract<VaultResult, { ok: true }>["kind"]>(t: ExecutionContext, r: VaultResult, kind: K): Extract<VaultResult, { kind: K }> {
  if (!r.ok || r.kind !== kind) t.fail(`expected ok ${kind}, got ${JSON.stringify(r)}`);
  return r as Extract<VaultResult, { kind: K }>;
}

/** A refusal with this code and this reason (the reason is what consumers switch on). */
export function expectError(t: ExecutionContext, r: VaultResult, code: VaultCode, reason: VaultReason): void {
  if (r.ok) t.fail(`expected ${code} ${reason}, got ok ${r.kind}`);
  else t.deepEqual([r.code, r.reason], [code, reason], r.message);
}

/**
 * SHA-256 of the records (with their confirmed attempts) and node announcements, in key order, by a scan:
 * what a refused command must leave unchanged (the request table, the
 * applied index and the leader time move).
 */
export function contentDigest(sm: VaultStateMachine): Uint8Array {
  const h = createHash("sha256");
  for (const prefix of [PREFIX.confirmation, PREFIX.node, PREFIX.record]) {
    for (const [k, v] of sm.store.scan(...tableRange(prefix))) h.update(lengthPrefixed(k)).update(lengthPrefixed(v));
  }
  return new Uint8Array(h.digest());
}

function lengthPrefixed(b: Uint8Array): Uint8Array {
  const out = Buffer.alloc(4 + b.length);
  out.writeUInt32BE(b.length);
  out.set(b, 4);
  return out;
}

/** Runs a generator to its end at once (no event loop to give turns to: tests and the simulation); returns its value. */
export function runToEnd<T>(steps: Generator<void, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
  }
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

// Pure-JS stand-ins for the nodes' tokens, for protocol tests.
import { randomBytes } from "node:crypto";
import {
  DEFAULT_SCRYPT,
  G,
  type Point,
  type RegistrationRecord,
  type ScryptParams,
  addGenerator,
  decodePoint,
  encodePoint,
  randomScalar,
  recoverEvaluatedPoint,
  unwrapShareForTest,
  xCoordinate,
} from "../proto/crypto/index.js";

/** Cheap scrypt for tests (the minimum accepted); DEFAULT_SCRYPT is exercised once. */
export const TEST_SCRYPT: ScryptParams = { N: 1 << 10, r: 8, p: 1 };
export { DEFAULT_SCRYPT };

export interface FakeNode {
  id: number;
  agreementPrivateKey: bigint;
  agreementPublicKey: Uint8Array;
}

export function makeNodes(ids: readonly number[]): FakeNode[] {
  return ids.map((id) => {
    const a = randomScalar();
    return { id, agreementPrivateKey: a, agreementPublicKey: encodePoint(G.multiply(a), false) };
  });
}

/**
 * What a node does for Evaluate, in pure JS: unwrap its share, take the two
 * x-coordinates a token's ECDH would give, and fix the sign with K_i.
 */
export function evaluateAsNode(node: FakeNode, record: RegistrationRecord, blinded: Uint8Array): Point {
  const entry = record.shares.find((s) => s.nodeId === node.id);
  if (entry === undefined) throw new Error(`node ${node.id} has no share`);
  const k = unwrapShareForTest(entry.wrappedShare, node.agreementPrivateKey);
  const B = decodePoint(blinded, "B");
  const x1 = xCoordinate(B.multiply(k));
  const x2 = xCoordinate(addGenerator(B).multiply(k));
  return recoverEvaluatedPoint(x1, x2, decodePoint(entry.publicShare));
}

export function randomKey(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

export function randomPoint(): Point {
  return G.multiply(randomScalar());
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

// Binding of each wrapped share to the one record it was made for
// (docs/threat-model.md, "Closed: a victim's shares copied into another
// record").
//
// A share wrapped to node i evaluates under whatever record carries it: the
// HSM checks only that the unwrapped k_i matches K_i, which the record also
// carries. Without a binding, whoever holds a user's record (any member, a
// thief of a disk or a backup) registers the same shares under an account
// of its own, with its own reset key and guess limit, and gets online
// guesses at the victim's password that the victim's counter never sees.
//
// Blob v2 carries σ_i = ECDSA_{e_i}(message_i): e_i is the ephemeral secret
// of the wrap's ECDH (E_i = e_i·G is in the blob, and the KEK the node
// derives is ECDH(E_i, a_i)), which only the registering client ever held.
// Anyone can check σ_i from the record alone; nobody without e_i can make
// one for another record, and a blob whose E_i is replaced no longer
// unwraps to k_i. So every node, on apply, refuses a record whose v2 shares
// do not verify for it, and a cluster that takes bound shares only refuses
// v1 blobs in new registrations: a share then evaluates only in its record.
//
//   bindingDigest = SHA-256("bkvS" || u8 1 || lp16(cluster id) || publicPartDigest(record) (record.ts)
//                   || u16 count || count × (u64 node id || E_i (65) || lp16(RFC 5649 ciphertext_i)))
//   message_i     = bindingDigest || u64 node id;   σ_i = low-S ECDSA P-256 / SHA-256
//
// The digest covers every field of the record but the signatures
// themselves, the other shares' ciphertexts included: a record that differs
// anywhere (user, version, guess limit, reset key, salt, another share)
// is another record, and none of its σ verify.
import { sha256 } from "@noble/hashes/sha2.js";
import { Writer } from "./bytes.js";
import { type PublicShare, type RecordPublicPart, type RecordShare, type RegistrationRecord, validatedPublicPartDigest } from "./record.js";
import { BOUND_WRAP_BLOB_VERSION, type SealedShare, WRAP_BLOB_VERSION, joinBoundShare, parseWrappedShare } from "./wrap.js";
import { signMessage, verifyMessage } from "./ecdsa.js";

const BINDING_MAGIC = Uint8Array.of(0x62, 0x6b, 0x76, 0x53); // "bkvS"
const BINDING_FORMAT = 1;

/** A share's parts the binding digest covers. */
export interface BoundPart {
  readonly nodeId: number;
  readonly ephemeralPublicKey: Uint8Array;
  readonly wrapped: Uint8Array;
}

/** A sealed share with its holder and commitment, as the registering client has it. */
export interface SealedRecordShare extends PublicShare, SealedShare {}

/**
 * The record's shares as blobs v2, each signed with its own ephemeral
 * secret over the record `publicPart` (whose `shares` are these shares'
 * public parts) in cluster `clusterId`.
 */
export function bindShares(clusterId: string, publicPart: RecordPublicPart, sealed: readonly SealedRecordShare[]): RecordShare[] {
  const messages = bindingMessages(clusterId, publicPart, sealed);
  return sealed.map((s, i) => ({
    nodeId: s.nodeId,
    publicShare: s.publicShare,
    wrappedShare: joinBoundShare(s, signMessage(s.ephemeralSecret, messages[i]!)),
  }));
}

/**
 * message_i of each of `parts` (in their order) for the record `publicPart`:
 * what σ_i signs. bindShares is the way to bind; this is for a signer of
 * its own (bench/ clones records under many user ids).
 */
export function bindingMessages(clusterId: string, publicPart: RecordPublicPart, parts: readonly BoundPart[]): Uint8Array[] {
  const digest = bindingDigest(clusterId, publicPart, parts);
  return parts.map((p) => bindingMessage(digest, p.nodeId));
}

/**
 * The words a node's refusal of an unbound share in a cluster that takes
 * bound shares only carries (state-machine.ts), which the SDK looks for to
 * go back to bound shares: one text for both.
 */
export const BOUND_SHARES_ONLY = "this cluster registers bound shares (wrap blob v2) only";

/** The node id of the record's first share in an unbound blob (v1), or null. The record was validated (each blob's first byte is its version). */
export function firstUnboundShare(record: RegistrationRecord): number | null {
  return record.shares.find((s) => s.wrappedShare[0] === WRAP_BLOB_VERSION)?.nodeId ?? null;
}

/** Whether any share of `record` is a bound blob (v2), by its version byte alone: for records not validated yet too. */
export function holdsBoundShare(record: RegistrationRecord): boolean {
  return record.shares.some((s) => s.wrappedShare[0] === BOUND_WRAP_BLOB_VERSION);
}

/**
 * The node id of the record's first bound share (v2) whose binding
 * signature does not verify for this record in cluster `clusterId` (a share
 * made for another record), or null. Unbound shares are not looked at.
 */
export function firstMisboundShare(clusterId: string, record: RegistrationRecord): number | null {
  const parsed = record.shares.map((s) => ({ nodeId: s.nodeId, ...parseWrappedShare(s.wrappedShare) }));
  if (parsed.every((p) => p.bindingSignature === null)) return null;
  const messages = bindingMessages(clusterId, record, parsed);
  const bad = parsed.find((p, i) => p.bindingSignature !== null
    && !verifyMessage(p.ephemeralPublicKey, messages[i]!, p.bindingSignature, { allowHighS: false }));
  return bad?.nodeId ?? null;
}

function bindingDigest(clusterId: string, publicPart: RecordPublicPart, parts: readonly BoundPart[]): Uint8Array {
  const w = new Writer().fixed(BINDING_MAGIC).u8(BINDING_FORMAT).str(clusterId).fixed(validatedPublicPartDigest(publicPart)).u16(parts.length);
  for (const p of [...parts].sort((a, b) => a.nodeId - b.nodeId)) w.u64(p.nodeId).fixed(p.ephemeralPublicKey).lp16(p.wrapped);
  return sha256(w.bytes());
}

function bindingMessage(digest: Uint8Array, nodeId: number): Uint8Array {
  return new Writer().fixed(digest).u64(nodeId).bytes();
}

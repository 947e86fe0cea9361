// Membership changes, one at a time (no joint consensus): AddLearner,
// PromoteLearner, RemoveNode. A change takes effect when the application
// applies its committed entry (RawNode.applyConfChange). The leader accepts
// a new change only after the previous one is applied (pendingConfIndex),
// and only after an entry of its own term is applied (see docs/raft.md).

import { InvalidEncodingError, Reader, Writer } from "../../proto/crypto/index.js";
import { type ConfChange, ConfChangeType, type ConfState, type Entry, type NodeId } from "./types.js";

/** A ConfChange entry whose bytes cannot be decoded. */
export class ErrInvalidConfChange extends InvalidEncodingError {
  override name = "ErrInvalidConfChange";
}

// Layout (big-endian): version u8 | type u8 | nodeId u64 | contextLength u32 | context.
const VERSION = 1;
const HEADER = 14;

export function encodeConfChange(cc: ConfChange): Uint8Array {
  checkNodeId(cc.nodeId);
  const w = new Writer("big-endian", HEADER + cc.context.byteLength);
  w.u8(VERSION).u8(cc.type).u64(cc.nodeId).u32(cc.context.byteLength).fixed(cc.context);
  return w.bytes();
}

export function decodeConfChange(b: Uint8Array): ConfChange {
  try {
    return readConfChange(new Reader(b, "conf change"));
  } catch (e) {
    if (e instanceof ErrInvalidConfChange || !(e instanceof InvalidEncodingError)) throw e;
    throw new ErrInvalidConfChange(e.message);
  }
}

function readConfChange(r: Reader): ConfChange {
  const version = r.u8();
  if (version !== VERSION) throw new ErrInvalidConfChange(`conf change: unknown version ${version}`);
  const type = r.u8();
  if (!(type in ConfChangeType) || typeof ConfChangeType[type] !== "string") {
    throw new ErrInvalidConfChange(`conf change: unknown type ${type}`);
  }
  const nodeId = r.safeU64();
  checkNodeId(nodeId);
  const context = r.fixed(r.u32());
  r.end();
  return { type: type as ConfChangeType, nodeId, context };
}

function checkNodeId(id: NodeId): void {
  if (!Number.isSafeInteger(id) || id <= 0) throw new ErrInvalidConfChange(`conf change: invalid node id ${id}`);
}

/**
 * The ConfState after applying cc to cs, or an error string if cc is not
 * valid against cs (then the change must be ignored, identically on every node).
 */
export function applyToConfState(cs: ConfState, cc: ConfChange): ConfState | string {
  const isVoter = cs.voters.includes(cc.nodeId);
  const isLearner = cs.learners.includes(cc.nodeId);
  switch (cc.type) {
    case ConfChangeType.AddLearner:
      if (isVoter || isLearner) return `node ${cc.nodeId} is already a member`;
      return { voters: [...cs.voters], learners: sortedIds([...cs.learners, cc.nodeId]) };
    case ConfChangeType.PromoteLearner:
      if (!isLearner) return `node ${cc.nodeId} is not a learner`;
      return {
        voters: sortedIds([...cs.voters, cc.nodeId]),
        learners: cs.learners.filter((id) => id !== cc.nodeId),
      };
    case ConfChangeType.RemoveNode:
      if (!isVoter && !isLearner) return `node ${cc.nodeId} is not a member`;
      if (isVoter && cs.voters.length === 1) return `cannot remove the last voter ${cc.nodeId}`;
      return {
        voters: cs.voters.filter((id) => id !== cc.nodeId),
        learners: cs.learners.filter((id) => id !== cc.nodeId),
      };
    default:
      return `unknown conf change type ${String(cc.type)}`;
  }
}

function sortedIds(ids: NodeId[]): NodeId[] {
  return ids.sort((a, b) => a - b);
}

/** Decodes a ConfChange entry; undefined if malformed. */
export function confChangeOf(e: Entry): ConfChange | undefined {
  try {
    return decodeConfChange(e.data);
  } catch {
    return undefined;
  }
}

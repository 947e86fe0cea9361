// Membership changes, one at a time (no joint consensus): AddLearner,
// PromoteLearner, RemoveNode. A change takes effect when the application
// applies its committed entry (RawNode.applyConfChange). The leader accepts
// a new change only after the previous one is applied (pendingConfIndex),
// and only after an entry of its own term is applied (see docs/raft.md).

import { type ConfChange, ConfChangeType, type ConfState, type Entry, type NodeId } from "./types.js";

/** A ConfChange entry whose bytes cannot be decoded. */
export class ErrInvalidConfChange extends Error {
  override name = "ErrInvalidConfChange";
}

const VERSION = 1;
const HEADER = 14; // version(1) type(1) nodeId(8) contextLength(4)

export function encodeConfChange(cc: ConfChange): Uint8Array {
  checkNodeId(cc.nodeId);
  const out = new Uint8Array(HEADER + cc.context.byteLength);
  const dv = new DataView(out.buffer);
  dv.setUint8(0, VERSION);
  dv.setUint8(1, cc.type);
  dv.setUint32(2, Math.floor(cc.nodeId / 2 ** 32));
  dv.setUint32(6, cc.nodeId >>> 0);
  dv.setUint32(10, cc.context.byteLength);
  out.set(cc.context, HEADER);
  return out;
}

export function decodeConfChange(b: Uint8Array): ConfChange {
  if (b.byteLength < HEADER) throw new ErrInvalidConfChange(`conf change: ${b.byteLength} bytes, need at least ${HEADER}`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint8(0) !== VERSION) throw new ErrInvalidConfChange(`conf change: unknown version ${dv.getUint8(0)}`);
  const type = dv.getUint8(1);
  if (!(type in ConfChangeType) || typeof ConfChangeType[type] !== "string") {
    throw new ErrInvalidConfChange(`conf change: unknown type ${type}`);
  }
  const nodeId = dv.getUint32(2) * 2 ** 32 + dv.getUint32(6);
  checkNodeId(nodeId);
  const len = dv.getUint32(10);
  if (HEADER + len !== b.byteLength) {
    throw new ErrInvalidConfChange(`conf change: context length ${len} does not match ${b.byteLength - HEADER} bytes`);
  }
  return { type: type as ConfChangeType, nodeId, context: b.slice(HEADER) };
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

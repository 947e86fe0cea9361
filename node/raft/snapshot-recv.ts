// Chunked InstallSnapshot, follower side: accumulates the chunks of one
// snapshot from one leader in one term, in order. Anything else restarts the
// transfer (offset 0) or is rejected with the byte count held, so the leader
// can resume from there. Every gap is answered: the leader dedupes rejections
// (a follower that stays silent after one rejection can livelock a transfer
// whose leader believes it holds more than it does: sim seed 673).

import type { NodeId, Snapshot, SnapshotChunk } from "./types.js";

export type ChunkOutcome =
  | { kind: "ack"; received: number }
  | { kind: "reject"; received: number }
  | { kind: "complete"; snapshot: Snapshot };

interface Assembly {
  from: NodeId;
  term: number;
  index: number;
  snapTerm: number;
  totalSize: number;
  parts: Uint8Array[];
  received: number;
}

export class SnapshotReceiver {
  private asm: Assembly | null = null;

  /** Bytes held for the transfer (from, term, index), 0 if none. */
  received(from: NodeId, term: number, index: number): number {
    const a = this.asm;
    return a !== null && a.from === from && a.term === term && a.index === index ? a.received : 0;
  }

  reset(): void {
    this.asm = null;
  }

  receive(from: NodeId, term: number, c: SnapshotChunk): ChunkOutcome {
    if (c.offset === 0 && this.received(from, term, c.metadata.index) === 0) this.start(from, term, c);
    const a = this.asm;
    if (a === null || a.from !== from || a.term !== term || a.index !== c.metadata.index ||
        a.snapTerm !== c.metadata.term || a.totalSize !== c.totalSize) {
      return { kind: "reject", received: 0 };
    }
    if (c.offset < a.received) return { kind: "ack", received: a.received }; // duplicate
    if (c.offset > a.received) return { kind: "reject", received: a.received }; // gap: a chunk was lost
    if (a.received + c.data.byteLength > a.totalSize || (c.done && a.received + c.data.byteLength !== a.totalSize)) {
      this.asm = null;
      return { kind: "reject", received: 0 };
    }
    a.parts.push(c.data.slice());
    a.received += c.data.byteLength;
    if (!c.done) return { kind: "ack", received: a.received };
    this.asm = null;
    return { kind: "complete", snapshot: { metadata: c.metadata, data: concat(a.parts, a.totalSize) } };
  }

  private start(from: NodeId, term: number, c: SnapshotChunk): void {
    this.asm = {
      from, term, index: c.metadata.index, snapTerm: c.metadata.term,
      totalSize: c.totalSize, parts: [], received: 0,
    };
  }
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

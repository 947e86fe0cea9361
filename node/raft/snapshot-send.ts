// Chunked InstallSnapshot, leader side: one SnapshotSender per follower in
// Progress Snapshot state. Chunks go out in order with at most WINDOW_CHUNKS
// unacknowledged; the follower acks each chunk with MsgSnapResp (index =
// bytes received). A rejection rewinds to the follower's byte count, at most
// once per position: chunks of the window already in flight produce more
// rejections for the same position, and acting on each would grow traffic
// without bound under reordering and duplication (sim seed 2007). Any other
// rejection is obeyed, even one below the acked position: a follower's count
// goes back when it restarts or its assembly is reset, and it must be heard
// (sim seeds 673, 3922). A heartbeat interval without progress resends from
// the last acked byte, which covers a lost resend.

import type { Snapshot, SnapshotChunk } from "./types.js";

export const WINDOW_CHUNKS = 4;

export class SnapshotSender {
  /** Bytes the follower confirmed. */
  private acked = 0;
  /** Bytes sent so far (offset of the next chunk). */
  private sent = 0;
  private lastChunkSent = false;
  private progressSinceBeat = true;
  /** True after a rewind caused by a rejection, until the follower acks new bytes. */
  private rewoundByReject = false;

  constructor(readonly snapshot: Snapshot, private readonly chunkSize: number) {}

  get index(): number {
    return this.snapshot.metadata.index;
  }

  totalSize(): number {
    return this.snapshot.data.byteLength;
  }

  /** The chunks that may be sent now, advancing the send cursor. */
  nextChunks(): SnapshotChunk[] {
    const out: SnapshotChunk[] = [];
    const total = this.totalSize();
    while (!this.lastChunkSent && this.sent - this.acked < WINDOW_CHUNKS * this.chunkSize) {
      const end = Math.min(total, this.sent + this.chunkSize);
      const done = end === total;
      out.push({
        metadata: this.snapshot.metadata,
        totalSize: total,
        offset: this.sent,
        data: this.snapshot.data.subarray(this.sent, end),
        done,
      });
      this.sent = end;
      this.lastChunkSent = done;
    }
    return out;
  }

  /** The follower holds `received` bytes. */
  onAck(received: number): void {
    if (received > this.sent && received <= this.totalSize()) {
      this.rewindTo(received); // the follower already holds more (an earlier transfer of this snapshot)
    } else if (received > this.acked && received <= this.sent) {
      this.acked = received;
      this.progressSinceBeat = true;
      this.rewoundByReject = false;
    }
  }

  /** The follower asks to resume from `received` bytes (0 = restart). */
  onReject(received: number): void {
    const to = received <= this.sent ? received : 0;
    if (this.rewoundByReject && to === this.acked) return; // already resending from there
    this.rewindTo(to);
    this.rewoundByReject = true;
  }

  /** Called once per heartbeat interval; rewinds to the last ack if nothing moved. Returns true if rewound. */
  onHeartbeat(): boolean {
    const stalled = !this.progressSinceBeat;
    this.progressSinceBeat = false;
    if (stalled) this.rewindTo(this.acked);
    return stalled;
  }

  private rewindTo(bytes: number): void {
    this.acked = bytes;
    this.sent = bytes;
    this.lastChunkSent = false;
    this.progressSinceBeat = true;
    this.rewoundByReject = false;
  }
}

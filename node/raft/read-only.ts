// ReadOnly: pending ReadIndex requests on the leader (etcd raft's readOnly,
// ReadOnlySafe mode). A request records the commit index at arrival; it is
// released once a quorum of voters has acknowledged a heartbeat carrying its
// context, which proves this node was still leader at that moment.

import type { Message, NodeId } from "./types.js";

export interface ReadIndexStatus {
  /** The original MsgReadIndex (from a follower or local). */
  readonly req: Message;
  readonly index: number;
  readonly acks: Set<NodeId>;
}

export function contextKey(ctx: Uint8Array): string {
  let s = "";
  for (const b of ctx) s += b.toString(16).padStart(2, "0");
  return s;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  /** Queues a request with the current commit index; duplicates of a pending context are ignored. */
  addRequest(index: number, req: Message): void {
    const key = contextKey(req.context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { req, index, acks: new Set() });
    this.queue.push(key);
  }

  /** Records a heartbeat ack for ctx; returns the set of ackers (undefined if unknown). */
  recvAck(from: NodeId, ctx: Uint8Array): Set<NodeId> | undefined {
    const rs = this.pending.get(contextKey(ctx));
    if (rs === undefined) return undefined;
    rs.acks.add(from);
    return rs.acks;
  }

  /**
   * Releases ctx's request and every request queued before it (a quorum ack
   * for a later heartbeat also confirms the earlier ones).
   */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const key = contextKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const released = this.queue.slice(0, at + 1).map((k) => this.pending.get(k)!);
    for (const k of this.queue.slice(0, at + 1)) this.pending.delete(k);
    this.queue = this.queue.slice(at + 1);
    return released;
  }

  /** Context of the newest pending request (attached to heartbeats), if any. */
  lastPendingContext(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)!.req.context;
  }
}

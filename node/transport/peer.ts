// One outbound peer: a bounded queue and one long-lived Stream call to the
// peer, reopened with backoff when it fails.
//
// States: idle -> connecting (header sent, waiting for the peer's accept)
// -> open (batches flow) ; any failure -> backoff -> idle -> connecting ...
// closed is final. An inbound stream from the peer ends a backoff at once
// (peerUp: backoff -> idle).
//
// Invariants:
// - at most one call per peer is current; events of an older call are ignored;
// - every write carries everything queued (up to maxBatchBytes), so sends
//   made in one event-loop turn leave in one MessageBatch;
// - raft callbacks (reportUnreachable/reportSnapshot) run from a later
//   event-loop turn, never from inside Transport.send();
// - messages are dropped, never queued, while the peer is known down; the
//   queue never holds more than queueCapacity messages.

import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { MessageType, type Message, type NodeId } from "../raft/index.js";
import {
  type StreamRequest, type StreamResponse, type RaftMessage,
  MessageBatchSchema, StreamRequestSchema, StreamHeaderSchema,
} from "../../proto/gen/bkv/v1/raft_pb.js";
import { Backoff } from "./backoff.js";
import { toWire, wireSize } from "./convert.js";
import type { TransportStats } from "./stats.js";

export type PeerState = "idle" | "connecting" | "open" | "backoff" | "closed";

/** What a Peer needs from its Transport. */
export interface PeerContext {
  readonly localId: NodeId;
  readonly clusterId: string;
  readonly queueCapacity: number;
  readonly maxBatchBytes: number;
  readonly connectTimeoutMs: number;
  readonly stats: TransportStats;
  newClient(id: NodeId, address: string): grpc.Client;
  newBackoff(): Backoff;
  reportUnreachable(id: NodeId): void;
  reportSnapshot(id: NodeId, ok: boolean): void;
  log(event: string, fields: Record<string, unknown>): void;
}

interface Queued {
  readonly wire: RaftMessage;
  readonly size: number;
  readonly snap: { done: boolean } | null;
}

type Call = grpc.ClientDuplexStream<StreamRequest, StreamResponse>;

export class Peer {
  private state: PeerState = "idle";
  private queue: Queued[] = [];
  private client: grpc.Client | null = null;
  private call: Call | null = null;
  private writable = true;
  private flushScheduled = false;
  private timer: NodeJS.Timeout | null = null;
  private unreachablePending = false;
  /** A snapshot chunk was written and the write of its transfer's last chunk has not completed. */
  private snapshotInFlight = false;
  private snapshotFailed = false;
  private readonly backoff: Backoff;

  constructor(readonly id: NodeId, private address: string, private readonly ctx: PeerContext) {
    this.backoff = ctx.newBackoff();
  }

  get currentState(): PeerState {
    return this.state;
  }

  get currentAddress(): string {
    return this.address;
  }

  /** Queues `m` for the next write, or drops it (peer down, queue full). */
  enqueue(m: Message): void {
    if (this.state === "closed") return;
    const snap = m.type === MessageType.Snap ? { done: m.snapshot?.done ?? false } : null;
    if (this.state === "backoff") {
      this.drop(snap !== null, "peer down");
      this.ctx.stats.droppedPeerDown++;
    } else if (this.queue.length >= this.ctx.queueCapacity) {
      this.drop(snap !== null, "queue full");
      this.ctx.stats.droppedQueueFull++;
    } else {
      this.queue.push({ wire: toWire(m), size: wireSize(m), snap });
    }
    this.scheduleFlush();
  }

  /** Points the peer at a new address; a current stream is closed and reopened there. */
  setAddress(address: string): void {
    if (address === this.address) return;
    this.address = address;
    if (this.state === "connecting" || this.state === "open") this.fail("address changed");
  }

  /** Opens the stream now rather than on the first message (a starting node makes itself known to its peers: peerUp). */
  dial(): void {
    if (this.state === "idle") this.scheduleFlush();
  }

  /**
   * The peer just opened a stream to us, so it is up: a link waiting out its
   * backoff reconnects now (a restarted node hears from its leader at once,
   * not after up to backoff.maxMs), and the next failure backs off from the
   * start again.
   */
  peerUp(): void {
    this.backoff.reset();
    if (this.state !== "backoff") return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.state = "idle";
    this.ctx.log("transport.peer_up", { peer: this.id, address: this.address });
    this.scheduleFlush();
  }

  close(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.dropQueue();
    this.closeCall();
  }

  private drop(isSnap: boolean, why: string): void {
    this.unreachablePending = true;
    if (isSnap) this.snapshotFailed = true;
    if (this.ctx.stats.messagesDropped++ % 1000 === 0) {
      this.ctx.log("transport.drop", { peer: this.id, why });
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.state === "closed") return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.state === "closed") return;
    this.reportPending();
    if (this.state === "idle") this.connect();
    if (this.state !== "open" || !this.writable) return;
    while (this.queue.length > 0 && this.writable) this.writeBatch();
  }

  private reportPending(): void {
    if (this.unreachablePending) {
      this.unreachablePending = false;
      this.ctx.reportUnreachable(this.id);
    }
    if (this.snapshotFailed) {
      this.snapshotFailed = false;
      this.snapshotInFlight = false;
      this.ctx.reportSnapshot(this.id, false);
    }
  }

  /** Writes the head of the queue, up to maxBatchBytes (at least one message). */
  private writeBatch(): void {
    const call = this.call;
    if (call === null) throw new Error("writeBatch without a call");
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length && (n === 0 || bytes + this.queue[n]!.size <= this.ctx.maxBatchBytes)) {
      bytes += this.queue[n]!.size;
      n++;
    }
    const batch = this.queue.splice(0, n);
    const lastSnap = batch.findLast((q) => q.snap !== null)?.snap ?? null;
    if (lastSnap !== null) this.snapshotInFlight = true;
    const frame = create(StreamRequestSchema, {
      frame: { case: "batch", value: create(MessageBatchSchema, { messages: batch.map((q) => q.wire) }) },
    });
    this.ctx.stats.writes++;
    this.ctx.stats.messagesSent += batch.length;
    const ok = call.write(frame, (err?: Error | null) => {
      if (lastSnap?.done !== true || err || call !== this.call) return;
      this.snapshotInFlight = false;
      this.ctx.reportSnapshot(this.id, true);
    });
    if (!ok) {
      this.writable = false;
      call.once("drain", () => {
        if (call !== this.call) return;
        this.writable = true;
        this.scheduleFlush();
      });
    }
  }

  private connect(): void {
    this.state = "connecting";
    this.client ??= this.ctx.newClient(this.id, this.address);
    const call = (this.client as unknown as { stream(): Call }).stream();
    this.call = call;
    this.writable = true;
    call.on("data", () => this.accepted(call));
    call.on("error", () => { /* the 'status' event carries the outcome */ });
    call.on("status", (st: grpc.StatusObject) => {
      if (call === this.call) this.fail(`stream ended: ${grpc.status[st.code]} ${st.details}`);
    });
    const header = create(StreamHeaderSchema, {
      clusterId: this.ctx.clusterId, from: BigInt(this.ctx.localId), to: BigInt(this.id),
    });
    call.write(create(StreamRequestSchema, { frame: { case: "header", value: header } }));
    this.timer = setTimeout(() => {
      if (call === this.call && this.state === "connecting") this.fail("no accept before connect timeout");
    }, this.ctx.connectTimeoutMs);
  }

  private accepted(call: Call): void {
    if (call !== this.call || this.state !== "connecting") return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.state = "open";
    this.backoff.reset();
    this.ctx.stats.streamsOpened++;
    this.ctx.log("transport.stream_open", { peer: this.id, address: this.address });
    this.scheduleFlush();
  }

  /** The current stream is gone: drop what it held, report, retry later. */
  private fail(why: string): void {
    if (this.state === "closed" || this.state === "backoff") return;
    if (this.state === "connecting") this.ctx.stats.connectFailures++;
    else this.ctx.stats.streamsFailed++;
    this.ctx.log("transport.stream_failed", { peer: this.id, address: this.address, why });
    this.closeCall();
    this.unreachablePending = true;
    if (this.snapshotInFlight) this.snapshotFailed = true;
    this.dropQueue();
    this.state = "backoff";
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.state !== "backoff") return;
      this.state = "idle";
      this.flush();
    }, this.backoff.next());
    this.scheduleFlush();
  }

  private dropQueue(): void {
    for (const q of this.queue) this.drop(q.snap !== null, "stream failed");
    this.ctx.stats.droppedPeerDown += this.queue.length;
    this.queue = [];
  }

  /** Cancels the current call and closes the channel (a fresh one is made per connect). */
  private closeCall(): void {
    const call = this.call;
    this.call = null;
    call?.cancel();
    this.client?.close();
    this.client = null;
  }
}

// RaftService.FetchSnapshot: a follower downloads the vault state of a
// snapshot from the node that sent it the snapshot message (docs/storage.md,
// "Snapshot transfer"). The transport moves opaque chunks; what they hold is
// the node's (SnapshotSource).
//
// Server side: the header is checked as a Stream header is; the chunks are
// written by writeChunks (chunk-writer.ts: backpressure, a turn of the event
// loop between chunks). A cancelled call closes the source.
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { NodeId } from "../raft/index.js";
import {
  type FetchSnapshotRequest, type FetchSnapshotResponse, FetchSnapshotRequestSchema, FetchSnapshotResponseSchema, StreamHeaderSchema,
} from "../../proto/gen/bkv/v1/raft_pb.js";
import { errorWithDetail } from "../../proto/rpc.js";
import { type InboundContext, refuseHeader } from "./inbound.js";
import { stallMessage, writeChunks } from "./chunk-writer.js";

/** An open snapshot: its chunks in order, then close() (also called when the caller goes away). */
export interface SnapshotStream {
  readonly chunks: Iterable<Uint8Array>;
  close(): void;
}

/** Opens the snapshot at (index, term) for node `from`'s transfer, or returns null when this node does not hold it. */
export type SnapshotSource = (from: NodeId, index: number, term: number) => SnapshotStream | null;

type FetchCall = grpc.ServerWritableStream<FetchSnapshotRequest, FetchSnapshotResponse>;

/** Serves one FetchSnapshot call. */
export async function serveFetch(call: FetchCall, source: SnapshotSource | undefined, ctx: InboundContext): Promise<void> {
  const req = call.request;
  const refused = refuseHeader("FetchSnapshot", "transport.fetch_refused", req.header, call, ctx);
  if (refused !== null) {
    call.emit("error", refused);
    return;
  }
  const snap = safeIndex(req.index) && safeIndex(req.term) ? source?.(Number(req.header!.from), Number(req.index), Number(req.term)) ?? null : null;
  if (snap === null) {
    call.emit("error", errorWithDetail(grpc.status.FAILED_PRECONDITION, `this node does not hold snapshot ${req.index} (term ${req.term}); wait for a newer snapshot message`));
    return;
  }
  try {
    const spent = await writeChunks(call, snap.chunks, (data) => create(FetchSnapshotResponseSchema, { data }));
    ctx.log(FETCH_EVENT[spent.outcome], { peer: call.getPeer(), index: Number(req.index), ...spent });
    if (spent.outcome === "stalled") call.emit("error", errorWithDetail(grpc.status.DEADLINE_EXCEEDED, stallMessage(spent)));
    else call.end();
  } catch (err) {
    ctx.log("transport.fetch_failed", { peer: call.getPeer(), index: Number(req.index), error: String(err) });
    if (!call.cancelled) call.emit("error", errorWithDetail(grpc.status.INTERNAL, "the snapshot could not be read"));
  } finally {
    snap.close();
  }
}

const FETCH_EVENT = { done: "transport.fetch_sent", cancelled: "transport.fetch_cancelled", stalled: "transport.fetch_stalled" } as const;

function safeIndex(v: bigint): boolean {
  return v > 0n && v <= BigInt(Number.MAX_SAFE_INTEGER);
}

export interface FetchTarget {
  readonly client: grpc.Client;
  readonly clusterId: string;
  readonly localId: NodeId;
  readonly peerId: NodeId;
}

/**
 * Calls FetchSnapshot on the peer and yields the chunks' bytes as they
 * arrive (backpressure: the call is paused while the consumer works).
 * Throws the call's error (a grpc ServiceError) if it fails; `signal` cancels it.
 */
export async function* fetchChunks(t: FetchTarget, index: number, term: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const header = create(StreamHeaderSchema, { clusterId: t.clusterId, from: BigInt(t.localId), to: BigInt(t.peerId) });
  const req = create(FetchSnapshotRequestSchema, { header, index: BigInt(index), term: BigInt(term) });
  const call = (t.client as unknown as { fetchSnapshot(r: FetchSnapshotRequest): grpc.ClientReadableStream<FetchSnapshotResponse> }).fetchSnapshot(req);
  const cancel = (): void => call.cancel();
  signal?.addEventListener("abort", cancel, { once: true });
  try {
    for await (const res of call as AsyncIterable<FetchSnapshotResponse>) yield res.data;
  } finally {
    signal?.removeEventListener("abort", cancel);
    call.cancel();
  }
}

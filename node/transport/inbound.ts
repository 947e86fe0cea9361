// The accepting side of RaftService.Stream: checks the header against the
// cluster id, our node id and the caller's certificate, then delivers each
// well-formed message of each batch to the node. A malformed message is
// dropped and counted; nothing a peer sends can throw out of here.

import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import type { Message, NodeId } from "../raft/index.js";
import {
  type StreamHeader, type StreamRequest, type StreamResponse, type RaftMessage,
  StreamResponseSchema,
} from "../../proto/gen/bkv/v1/raft_pb.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { errorWithDetail } from "../../proto/rpc.js";
import { fromWire, MalformedMessage } from "./convert.js";
import type { TransportStats } from "./stats.js";

type ServerCall = grpc.ServerDuplexStream<StreamRequest, StreamResponse>;

export interface InboundContext {
  readonly localId: NodeId;
  readonly clusterId: string;
  readonly stats: TransportStats;
  /** The certificate CN that node `id` must present. */
  peerName(id: NodeId): string;
  onMessage(m: Message): void;
  /** Node `id` opened a stream to us (its header was accepted): it is up now. Must not throw. */
  onPeerUp(id: NodeId): void;
  log(event: string, fields: Record<string, unknown>): void;
}

/** Serves one inbound stream until the caller ends it. */
export function serveStream(call: ServerCall, ctx: InboundContext): void {
  let from: NodeId | null = null;
  call.on("data", (req: StreamRequest) => {
    if (from !== null) {
      deliverFrame(req, from, ctx);
      return;
    }
    const refusal = req.frame.case === "header"
      ? checkHeader(req.frame.value, call, ctx)
      : { code: grpc.status.FAILED_PRECONDITION, why: "the first frame must be a StreamHeader" };
    if (refusal !== null) {
      ctx.stats.inboundRefused++;
      ctx.log("transport.inbound_refused", { peer: call.getPeer(), why: refusal.why });
      call.emit("error", errorWithDetail(refusal.code, refusal.why, { reason: ErrorReason.MEMBERSHIP }));
      return;
    }
    from = Number((req.frame.value as StreamHeader).from);
    ctx.stats.inboundAccepted++;
    call.write(create(StreamResponseSchema, { nodeId: BigInt(ctx.localId) }));
    ctx.onPeerUp(from);
  });
  call.on("end", () => call.end());
  call.on("error", () => { /* cancelled by the peer; nothing to clean up */ });
}

export interface Refusal {
  readonly code: grpc.status;
  readonly why: string;
}

/** Why a call with header `h` is refused (wrong cluster, wrong node, certificate of another node), or null. */
export function checkHeader(h: StreamHeader, call: Pick<ServerCall, "getAuthContext">, ctx: Pick<InboundContext, "clusterId" | "localId" | "peerName">): Refusal | null {
  const { FAILED_PRECONDITION, PERMISSION_DENIED } = grpc.status;
  if (h.clusterId !== ctx.clusterId) {
    return { code: FAILED_PRECONDITION, why: `stream for cluster "${h.clusterId}", this is "${ctx.clusterId}"` };
  }
  if (h.to !== BigInt(ctx.localId)) {
    return { code: FAILED_PRECONDITION, why: `stream for node ${h.to}, this is node ${ctx.localId}` };
  }
  if (h.from === 0n || h.from > BigInt(Number.MAX_SAFE_INTEGER)) {
    return { code: FAILED_PRECONDITION, why: "header.from is not a node id" };
  }
  const want = ctx.peerName(Number(h.from));
  const cn = call.getAuthContext().sslPeerCertificate?.subject?.CN;
  if (cn !== want) {
    return { code: PERMISSION_DENIED, why: `node ${h.from} must present a certificate for "${want}"` };
  }
  return null;
}

/**
 * The error that ends a call of `method` (FetchSnapshot, GetStateDigest)
 * whose header is missing or refused by checkHeader, logged as `event` and
 * counted; null when the header is accepted.
 */
export function refuseHeader(method: string, event: string, h: StreamHeader | undefined, call: Pick<ServerCall, "getAuthContext" | "getPeer">, ctx: InboundContext): grpc.ServiceError | null {
  const refusal = h === undefined ? { code: grpc.status.FAILED_PRECONDITION, why: `${method} needs a header` } : checkHeader(h, call, ctx);
  if (refusal === null) return null;
  ctx.stats.inboundRefused++;
  ctx.log(event, { peer: call.getPeer(), why: refusal.why });
  return errorWithDetail(refusal.code, refusal.why, { reason: ErrorReason.MEMBERSHIP });
}

function deliverFrame(req: StreamRequest, from: NodeId, ctx: InboundContext): void {
  if (req.frame.case !== "batch") {
    ctx.stats.malformedReceived++;
    return;
  }
  ctx.stats.batchesReceived++;
  for (const wire of req.frame.value.messages) deliver(wire, from, ctx);
}

function deliver(wire: RaftMessage, from: NodeId, ctx: InboundContext): void {
  const m = fromWire(wire);
  const bad = m instanceof MalformedMessage ? m.message
    : m.from !== from ? `from ${m.from} on a stream from ${from}`
    : m.to !== ctx.localId ? `to ${m.to} on a stream to ${ctx.localId}`
    : null;
  if (bad !== null) {
    if (ctx.stats.malformedReceived++ % 1000 === 0) ctx.log("transport.malformed", { peer: from, why: bad });
    return;
  }
  ctx.stats.messagesReceived++;
  try {
    ctx.onMessage(m as Message);
  } catch (err) {
    ctx.stats.handlerErrors++;
    ctx.log("transport.handler_error", { peer: from, error: String(err) });
  }
}

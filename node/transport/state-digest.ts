// RaftService.GetStateDigest: a node asks a peer for its vault state digest
// at an applied index before it installs a snapshot of that index
// (docs/threat-model.md, "Closed: a forged InstallSnapshot resets a
// counter"). The transport moves the 32 bytes; which digest a node holds is
// the node's (DigestSource). Both ends are authenticated by mTLS: the
// caller's certificate must name the header's `from`, and the callee's
// certificate is checked against node-<id> by the channel.
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type GetStateDigestRequest, type GetStateDigestResponse, GetStateDigestRequestSchema, GetStateDigestResponseSchema, StreamHeaderSchema,
} from "../../proto/gen/bkv/v1/raft_pb.js";
import { type InboundContext, refuseHeader } from "./inbound.js";
import type { FetchTarget } from "./snapshot-fetch.js";

/** The digest right after applied index `index`, or undefined when this node does not remember it. */
export type DigestSource = (index: number) => Uint8Array | undefined;

type DigestCall = grpc.ServerUnaryCall<GetStateDigestRequest, GetStateDigestResponse>;

/** Serves one GetStateDigest call. */
export function serveDigest(call: DigestCall, callback: grpc.sendUnaryData<GetStateDigestResponse>, source: DigestSource | undefined, ctx: InboundContext): void {
  const req = call.request;
  const refused = refuseHeader("GetStateDigest", "transport.digest_refused", req.header, call, ctx);
  if (refused !== null) {
    callback(refused);
    return;
  }
  const digest = req.index <= BigInt(Number.MAX_SAFE_INTEGER) ? source?.(Number(req.index)) : undefined;
  callback(null, create(GetStateDigestResponseSchema, digest === undefined ? { available: false } : { available: true, digest }));
}

type DigestClient = {
  getStateDigest(r: GetStateDigestRequest, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: GetStateDigestResponse) => void): grpc.ClientUnaryCall;
};

function digestRequest(t: FetchTarget, index: number): GetStateDigestRequest {
  const header = create(StreamHeaderSchema, { clusterId: t.clusterId, from: BigInt(t.localId), to: BigInt(t.peerId) });
  return create(GetStateDigestRequestSchema, { header, index: BigInt(index) });
}

/** Asks the peer for its digest at `index`: the digest, or null when it does not hold it. Throws the call's error. */
export function askDigest(t: FetchTarget, index: number, timeoutMs: number): Promise<Uint8Array | null> {
  const client = t.client as unknown as DigestClient;
  return new Promise((resolve, reject) => {
    client.getStateDigest(digestRequest(t, index), { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err !== null) reject(err);
      else resolve(res?.available === true ? res.digest : null);
    });
  });
}

/**
 * One reading of a peer's wall clock: the HTTP `date` header of its answer
 * (RFC 9110: whole seconds, so the peer's time at the answer lies in
 * [peerMs, peerMs + 1000)), and this node's clock when the call left and
 * when the answer came.
 */
export interface PeerClockSample {
  readonly peerMs: number;
  readonly sentMs: number;
  readonly receivedMs: number;
}

/**
 * Reads the peer's clock from a GetStateDigest of index 0, the cheapest call
 * its peer port answers; the answer itself is not read (founders remember
 * index 0, where their vault state was opened, until they restart). Throws
 * the call's error, or when the answer carries no parsable `date` header.
 */
export function askClock(t: FetchTarget, timeoutMs: number, now: () => number = Date.now): Promise<PeerClockSample> {
  const client = t.client as unknown as DigestClient;
  return new Promise((resolve, reject) => {
    let peerMs: number | undefined;
    const sentMs = now();
    const call = client.getStateDigest(digestRequest(t, 0), { deadline: sentMs + timeoutMs }, (err) => {
      const receivedMs = now();
      if (err !== null) reject(err);
      else if (peerMs === undefined) reject(new Error(`node ${t.peerId}'s answer has no date header`));
      else resolve({ peerMs, sentMs, receivedMs });
    });
    call.on("metadata", (md: grpc.Metadata) => {
      const ms = Date.parse(String(md.get("date")[0] ?? ""));
      if (Number.isFinite(ms)) peerMs = ms;
    });
  });
}


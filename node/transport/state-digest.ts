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

/** Asks the peer for its digest at `index`: the digest, or null when it does not hold it. Throws the call's error. */
export function askDigest(t: FetchTarget, index: number, timeoutMs: number): Promise<Uint8Array | null> {
  const header = create(StreamHeaderSchema, { clusterId: t.clusterId, from: BigInt(t.localId), to: BigInt(t.peerId) });
  const req = create(GetStateDigestRequestSchema, { header, index: BigInt(index) });
  const client = t.client as unknown as {
    getStateDigest(r: GetStateDigestRequest, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: GetStateDigestResponse) => void): void;
  };
  return new Promise((resolve, reject) => {
    client.getStateDigest(req, { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err !== null) reject(err);
      else resolve(res?.available === true ? res.digest : null);
    });
  });
}


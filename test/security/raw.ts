// Raw gRPC for hostile tests: request bodies are sent as given (no
// serializer in between), and every outcome is read as a status.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import type { DescMessage } from "@bufbuild/protobuf";
import { AdminService } from "../../proto/gen/bkv/v1/admin_pb.js";
import { RaftService } from "../../proto/gen/bkv/v1/raft_pb.js";
import { VaultService } from "../../proto/gen/bkv/v1/vault_pb.js";
import { errorDetailOf } from "../../proto/rpc.js";
import type { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import type { LocalCluster } from "../../testkit/cluster.js";

/** The outcome of one raw call. */
export interface Outcome {
  readonly code: grpc.status;
  readonly details: string;
  readonly reason: ErrorReason | undefined;
}

const identity = (b: Buffer) => b;

/**
 * One request method of VaultService or AdminService (every method but the
 * peer stream takes one request: unary, or server streaming as SaveSnapshot),
 * with its path and request type.
 */
export interface RequestMethod {
  readonly service: "vault" | "admin";
  readonly name: string;
  readonly path: string;
  readonly input: DescMessage;
  /** The answer is a stream of messages (read and dropped by RawNode.request). */
  readonly serverStreaming: boolean;
}

const methodsOf = (service: "vault" | "admin", s: typeof VaultService | typeof AdminService): RequestMethod[] =>
  s.methods.map((m) => ({ service, name: m.name, path: `/${s.typeName}/${m.name}`, input: m.input, serverStreaming: m.methodKind === "server_streaming" }));

export const REQUEST_METHODS: readonly RequestMethod[] = [...methodsOf("vault", VaultService), ...methodsOf("admin", AdminService)];

export const PEER_STREAM_PATH = `/${RaftService.typeName}/${RaftService.method.stream.name}`;

/** Raw channels to one node: client port (TLS), admin port (mTLS as the operator: every method) and peer port (mTLS as node `as`). */
export class RawNode {
  readonly vault: grpc.Client;
  readonly admin: grpc.Client;
  readonly peer: grpc.Client;

  /** `options`: extra channel options for all three (e.g. a compression algorithm). */
  constructor(cluster: LocalCluster, readonly id: number, as: number, options: grpc.ChannelOptions = {}) {
    const certs = join(cluster.dir, "certs");
    const ca = readFileSync(join(certs, "ca.crt"));
    const mtls = grpc.credentials.createSsl(ca, readFileSync(join(certs, `node-${as}.key`)), readFileSync(join(certs, `node-${as}.crt`)));
    const n = cluster.node(id);
    const name = { ...options, "grpc.ssl_target_name_override": `node-${id}` };
    this.vault = new grpc.Client(n.client, grpc.credentials.createSsl(ca), name);
    this.admin = new grpc.Client(n.admin, cluster.operatorCreds(), name);
    this.peer = new grpc.Client(n.peer, mtls, name);
  }

  /** Sends `body` as method `m`'s request; resolves with the call's status (a server stream's messages are read and dropped). */
  request(m: RequestMethod, body: Uint8Array, deadlineMs = 10_000): Promise<Outcome> {
    const channel = m.service === "vault" ? this.vault : this.admin;
    const options = { deadline: Date.now() + deadlineMs };
    return new Promise((resolve) => {
      const settle = (err: { code?: number; details?: string; metadata?: grpc.Metadata } | null) =>
        resolve(err === null || err.code === grpc.status.OK ? { code: grpc.status.OK, details: "", reason: undefined } : outcome(err));
      if (!m.serverStreaming) {
        channel.makeUnaryRequest(m.path, identity, identity, Buffer.from(body), new grpc.Metadata(), options, settle);
        return;
      }
      const call = channel.makeServerStreamRequest(m.path, identity, identity, Buffer.from(body), new grpc.Metadata(), options);
      call.on("data", () => { /* read and dropped */ });
      call.on("error", () => { /* the status below carries it */ });
      call.on("status", settle);
    });
  }

  /**
   * Opens a peer stream, writes `frames`, half-closes and resolves with the
   * stream's status (OK when the node ends it normally).
   */
  stream(frames: readonly Uint8Array[], deadlineMs = 10_000): Promise<Outcome> {
    return new Promise((resolve) => {
      const call = this.peer.makeBidiStreamRequest(PEER_STREAM_PATH, identity, identity, new grpc.Metadata(), { deadline: Date.now() + deadlineMs });
      call.on("data", () => { /* StreamResponse: the header was accepted */ });
      call.on("error", () => { /* the status below carries it */ });
      call.on("status", (st: grpc.StatusObject) => resolve(st.code === grpc.status.OK ? { code: st.code, details: "", reason: undefined } : outcome(st)));
      for (const f of frames) call.write(Buffer.from(f));
      call.end();
    });
  }

  close(): void {
    this.vault.close();
    this.admin.close();
    this.peer.close();
  }
}

function outcome(err: { code?: number; details?: string; metadata?: grpc.Metadata }): Outcome {
  return { code: err.code ?? grpc.status.UNKNOWN, details: err.details ?? "", reason: errorDetailOf(err)?.reason };
}

/** Sum of a counter's samples whose labels include every `labels` pair. */
export function counterValue(exposition: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of exposition.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

// Raft messages between vault nodes over gRPC (proto/bkv/v1/raft.proto).
//
// A Transport serves RaftService.Stream for inbound traffic and keeps one
// outbound Peer (one long-lived stream) per known node. It knows raft's
// message types and nothing about vaults. See docs/transport.md.
//
// Contract with the node:
// - `send()` never blocks and never throws for a peer's failure; messages to
//   an unreachable peer are dropped (raft tolerates loss) and reported
//   through `reportUnreachable`, and a lost snapshot chunk through
//   `reportSnapshot(id, false)`. Callbacks run in a later event-loop turn.
// - `onMessage` gets only well-formed wire messages addressed to this node,
//   in the order the sending peer sent them.

import * as grpc from "@grpc/grpc-js";
import type { Message, NodeId } from "../raft/index.js";
import {
  RaftService, type FetchSnapshotRequest, type FetchSnapshotResponse, type GetStateDigestRequest, type GetStateDigestResponse,
  type StreamRequest, type StreamResponse,
} from "../../proto/gen/bkv/v1/raft_pb.js";
import { NO_CHANNELZ, serviceDefinition, strictServer, type UndecodableRequest } from "../../proto/rpc.js";
import { ConnectionGate, type ConnectionGateOptions } from "../../proto/connection-gate.js";
import { Backoff, DEFAULT_BACKOFF, validateBackoff, type BackoffOptions } from "./backoff.js";
import { isWireType, wireSize } from "./convert.js";
import { serveStream } from "./inbound.js";
import { type FetchTarget, fetchChunks, serveFetch, type SnapshotSource } from "./snapshot-fetch.js";
import { askClock, askDigest, serveDigest, type DigestSource, type PeerClockSample } from "./state-digest.js";
import { Peer, type PeerContext, type PeerState } from "./peer.js";
import { newStats, type TransportStats } from "./stats.js";
import {
  channelCredentials, defaultPeerName, serverCredentials, serverNameOptions, type TlsMaterial,
} from "./tls.js";

export { loadTls, devCertFiles, type TlsMaterial, type TlsFiles } from "./tls.js";
export type { TransportStats } from "./stats.js";
export type { PeerState } from "./peer.js";
export type { BackoffOptions } from "./backoff.js";
export type { SnapshotSource, SnapshotStream } from "./snapshot-fetch.js";
export { STALL_MS, stallMessage, writeChunks, type SendSpent } from "./chunk-writer.js";
export type { DigestSource, PeerClockSample } from "./state-digest.js";

/** Largest inbound frame accepted (a batch or one snapshot chunk). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/**
 * The HTTP/2 flow-control window (per stream and per connection) a node
 * grants the peers it dials: how far a FetchSnapshot sender (or a leader's
 * MsgApps) may run ahead of this node's reads. At HTTP/2's default 64 KiB
 * one 64 KiB snapshot chunk filled it, and a transfer went stop-and-wait:
 * the sender waited for a WINDOW_UPDATE after each chunk while the
 * importer waited for the next (docs/benchmarks.md, "Catch-up: the
 * transfer's flow control"). Memory: at most this much is buffered per peer.
 */
export const PEER_FLOW_WINDOW_BYTES = 8 * 1024 * 1024;
/**
 * Largest single message sent. A bigger one could never be delivered (the
 * peer would refuse the frame, the stream would fail, raft would resend):
 * it is dropped as invalid instead. Raft's own limits (maxSizePerMsg,
 * maxSnapshotChunkBytes) keep real messages far below it.
 */
export const MAX_MESSAGE_BYTES = MAX_FRAME_BYTES - 1024 * 1024;
/**
 * Open connections the peer port takes, in all and from one source address;
 * one more is closed at accept, before TLS (proto/connection-gate.ts). A
 * member holds a few on another: its Raft stream, and a channel of its own
 * per snapshot fetch, digest or clock reading. The caps keep strangers who
 * reach the port (it is mutual TLS: they get no further than the handshake)
 * from taking the node's file descriptors.
 */
export const PEER_PORT_CONNECTIONS = { maxConnections: 128, maxConnectionsPerAddress: 32, connectsPerSecPerAddress: 16 } as const;

/** What the peer port's connection gate reports (proto/connection-gate.ts); each must not throw. */
export type ConnectionEvents = Pick<ConnectionGateOptions, "onRefused" | "onCount" | "onAcceptError">;

export interface TransportOptions {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  /** host:port to listen on for peers ("127.0.0.1:0" picks a free port). */
  readonly listenAddress: string;
  readonly tls: TlsMaterial;
  /** Delivers an inbound message to the raft node. Must not throw. */
  onMessage(m: Message): void;
  /** A message to `id` was dropped or its stream failed (raft: ReportUnreachable). */
  reportUnreachable(id: NodeId): void;
  /** A snapshot transfer to `id` was sent out (true) or lost (false). */
  reportSnapshot(id: NodeId, ok: boolean): void;
  /** Messages queued per peer before new ones are dropped. Default 4096. */
  readonly queueCapacity?: number;
  /** Soft cap on one MessageBatch write. Default 4 MiB. */
  readonly maxBatchBytes?: number;
  /** Time for a peer to accept a new stream. Default 5 s. */
  readonly connectTimeoutMs?: number;
  readonly backoff?: BackoffOptions;
  /** Certificate name of node `id`. Default "node-<id>". */
  peerName?(id: NodeId): string;
  /** An inbound frame did not decode (its stream ended with INVALID_ARGUMENT). Must not throw. */
  onUndecodable?(req: UndecodableRequest, peer: string): void;
  /** Serves FetchSnapshot (a follower downloading one of this node's snapshots). Default: holds none. */
  readonly snapshotSource?: SnapshotSource;
  /** Serves GetStateDigest (a peer checking a snapshot before it installs it). Default: remembers none. */
  readonly digestSource?: DigestSource;
  /** Structured events (no secrets are ever passed). Default: silent. */
  log?(event: string, fields: Record<string, unknown>): void;
  /** The peer port's connections: counts, refusals at PEER_PORT_CONNECTIONS, failed accepts. Default: refusals and failed accepts go to `log`. */
  readonly connections?: ConnectionEvents;
}

export class Transport {
  readonly stats: TransportStats = newStats();
  private readonly peers = new Map<NodeId, Peer>();
  private server: grpc.Server | null = null;
  private gate: ConnectionGate | null = null;
  private boundAddress: string | null = null;
  private readonly definition: grpc.ServiceDefinition;
  private readonly peerCtx: PeerContext;

  constructor(private readonly opts: TransportOptions) {
    if (!Number.isSafeInteger(opts.nodeId) || opts.nodeId <= 0) throw new RangeError("nodeId must be a positive safe integer");
    if (opts.clusterId === "") throw new RangeError("clusterId must not be empty");
    validateBackoff(opts.backoff ?? DEFAULT_BACKOFF);
    this.definition = serviceDefinition(RaftService);
    this.peerCtx = this.makePeerContext();
  }

  /** Starts serving peers; resolves with the bound host:port. */
  async start(): Promise<string> {
    if (this.server !== null) throw new Error("transport already started");
    const undecodable = (req: UndecodableRequest, peer: string): void => {
      this.stats.undecodableFrames++;
      this.log("transport.undecodable_frame", { peer, bytes: req.length, why: req.message });
      this.opts.onUndecodable?.(req, peer);
    };
    const server = strictServer({ undecodable }, { "grpc.max_receive_message_length": MAX_FRAME_BYTES });
    const inbound = {
      localId: this.opts.nodeId, clusterId: this.opts.clusterId, stats: this.stats,
      peerName: this.peerName, onMessage: this.opts.onMessage, log: this.log,
      onPeerUp: (id: NodeId) => this.peers.get(id)?.peerUp(),
    };
    server.addService(this.definition, {
      stream: (call: grpc.ServerDuplexStream<StreamRequest, StreamResponse>) => serveStream(call, inbound),
      fetchSnapshot: (call: grpc.ServerWritableStream<FetchSnapshotRequest, FetchSnapshotResponse>) => void serveFetch(call, this.opts.snapshotSource, inbound),
      getStateDigest: (call: grpc.ServerUnaryCall<GetStateDigestRequest, GetStateDigestResponse>, cb: grpc.sendUnaryData<GetStateDigestResponse>) =>
        serveDigest(call, cb, this.opts.digestSource, inbound),
    });
    const gate = new ConnectionGate({ ...PEER_PORT_CONNECTIONS, ...this.connectionEvents() });
    gate.serve(server, serverCredentials(this.opts.tls));
    this.boundAddress = await gate.listen(this.opts.listenAddress);
    this.server = server;
    this.gate = gate;
    return this.boundAddress;
  }

  /** Closes every peer stream and the server. Idempotent. */
  async stop(): Promise<void> {
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    this.gate?.close();
    this.gate = null;
    this.server?.forceShutdown();
    this.server = null;
  }

  private connectionEvents(): ConnectionEvents {
    return this.opts.connections ?? {
      onRefused: (reason, address) => this.log("transport.connection_refused", { reason, address }),
      onAcceptError: (err) => this.log("transport.accept_failed", { error: err.message }),
    };
  }

  get address(): string | null {
    return this.boundAddress;
  }

  /**
   * Adds (or re-addresses) the peer `id` at host:port. A new peer is dialled
   * at once: a restarted node's streams tell its peers it is up, and they end
   * their backoff to it (Peer.peerUp) instead of waiting it out.
   */
  addPeer(id: NodeId, address: string): void {
    if (!Number.isSafeInteger(id) || id <= 0) throw new RangeError(`peer id ${id} is not a positive safe integer`);
    if (id === this.opts.nodeId) throw new RangeError("a node is not its own peer");
    const existing = this.peers.get(id);
    if (existing !== undefined) {
      existing.setAddress(address);
      return;
    }
    const peer = new Peer(id, address, this.peerCtx);
    this.peers.set(id, peer);
    peer.dial();
  }

  removePeer(id: NodeId): void {
    this.peers.get(id)?.close();
    this.peers.delete(id);
  }

  /** Queues each message for its peer (`m.to`). Never blocks; see the contract above. */
  send(messages: readonly Message[]): void {
    for (const m of messages) {
      const peer = this.peers.get(m.to);
      if (peer === undefined) {
        this.stats.droppedUnknownPeer++;
        this.stats.messagesDropped++;
      } else if (!isWireType(m.type) || m.from !== this.opts.nodeId || wireSize(m) > MAX_MESSAGE_BYTES) {
        this.stats.droppedInvalid++;
        this.stats.messagesDropped++;
        this.log("transport.invalid_outbound", { type: m.type, from: m.from, to: m.to });
      } else {
        this.enqueue(peer, m);
      }
    }
  }

  private enqueue(peer: Peer, m: Message): void {
    try {
      peer.enqueue(m);
    } catch (err) {
      // toWire refused a field (negative or fractional number): a raft bug, not the peer's.
      this.stats.droppedInvalid++;
      this.stats.messagesDropped++;
      this.log("transport.invalid_outbound", { type: m.type, to: m.to, error: String(err) });
    }
  }

  /**
   * Downloads snapshot (index, term) from peer `id` (FetchSnapshot on a
   * channel of its own): yields the chunks as they arrive; throws the call's
   * error. `signal` cancels the transfer.
   */
  async *fetchSnapshot(id: NodeId, index: number, term: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    const target = this.ownChannel(id);
    try {
      yield* fetchChunks(target, index, term, signal);
    } finally {
      target.client.close();
    }
  }

  /**
   * Peer `id`'s state digest at applied index `index` (GetStateDigest on a
   * channel of its own): null when the peer does not hold it; throws the
   * call's error (unreachable, refused, past `timeoutMs`).
   */
  stateDigest(id: NodeId, index: number, timeoutMs: number): Promise<Uint8Array | null> {
    return this.onOwnChannel(id, (target) => askDigest(target, index, timeoutMs));
  }

  /** A reading of peer `id`'s wall clock (askClock), on a channel of its own; throws the call's error. */
  peerClock(id: NodeId, timeoutMs: number): Promise<PeerClockSample> {
    return this.onOwnChannel(id, (target) => askClock(target, timeoutMs));
  }

  /** Runs one call to peer `id` on a channel opened for it and closed after. */
  private async onOwnChannel<T>(id: NodeId, call: (target: FetchTarget) => Promise<T>): Promise<T> {
    const target = this.ownChannel(id);
    try {
      return await call(target);
    } finally {
      target.client.close();
    }
  }

  /** A channel of its own to peer `id` (the caller closes its client): rare calls that should not share the Raft stream's. */
  private ownChannel(id: NodeId): FetchTarget {
    const address = this.peers.get(id)?.currentAddress;
    if (address === undefined) throw new Error(`node ${id} is not a known peer`);
    return { client: this.peerCtx.newClient(id, address), clusterId: this.opts.clusterId, localId: this.opts.nodeId, peerId: id };
  }

  /** Ids of the peers this transport knows. */
  get peerIds(): NodeId[] {
    return [...this.peers.keys()];
  }

  /** The state of the outbound stream to `id`, or undefined for an unknown peer. */
  peerState(id: NodeId): PeerState | undefined {
    return this.peers.get(id)?.currentState;
  }

  private readonly peerName = (id: NodeId): string => (this.opts.peerName ?? defaultPeerName)(id);

  private readonly log = (event: string, fields: Record<string, unknown>): void => {
    this.opts.log?.(event, { node: this.opts.nodeId, ...fields });
  };

  private makePeerContext(): PeerContext {
    const o = this.opts;
    const Client = grpc.makeGenericClientConstructor(this.definition, "RaftService");
    const creds = channelCredentials(o.tls);
    return {
      localId: o.nodeId, clusterId: o.clusterId, stats: this.stats,
      queueCapacity: o.queueCapacity ?? 4096,
      maxBatchBytes: o.maxBatchBytes ?? 4 * 1024 * 1024,
      connectTimeoutMs: o.connectTimeoutMs ?? 5000,
      newClient: (id, address) => new Client(address, creds, {
        ...NO_CHANNELZ, ...serverNameOptions(this.peerName(id)),
        "grpc.use_local_subchannel_pool": 1,
        "grpc.max_send_message_length": MAX_FRAME_BYTES,
        "grpc.keepalive_time_ms": 10_000,
        "grpc.keepalive_timeout_ms": 5_000,
        "grpc.keepalive_permit_without_calls": 1,
        "grpc-node.flow_control_window": PEER_FLOW_WINDOW_BYTES,
      }),
      newBackoff: () => new Backoff(o.backoff ?? DEFAULT_BACKOFF),
      reportUnreachable: (id) => o.reportUnreachable(id),
      reportSnapshot: (id, ok) => o.reportSnapshot(id, ok),
      log: this.log,
    };
  }
}

// The gRPC channels a client opens, one per node address, and everything
// under them: close() ends it all, so that a script whose clients are closed
// exits by itself (docs/client.md, "Closing").
//
// Channel.close() of grpc-js 1.14.7 leaves two things running:
// - a call already on a connection keeps it, and the event loop, until its
//   deadline: every call here carries the pool's AbortSignal, and close()
//   cancels them (CANCELLED);
// - a connection still in its TLS handshake (a node that accepted the TCP
//   connection and never answers: a stopped process). Neither grpc-js's
//   connector nor its SSL SecureConnector times the handshake out or
//   destroys the socket on shutdown, and no channel option reaches it. grpc-js
//   hands every new TCP socket to the credentials' SecureConnector
//   (ChannelCredentials._createSecureConnector; the SecureConnector type is
//   in @grpc/grpc-js `experimental`): ClosingCredentials wraps the real
//   credentials there, holds each socket until its handshake settles, and
//   destroys those still pending on close().
import type { Socket } from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { type UnaryClient, unaryClient } from "../../proto/rpc.js";
import { ClientError } from "./errors.js";

type ConnectorArgs = Parameters<grpc.ChannelCredentials["_createSecureConnector"]>;

/** Reconnect quickly after a node comes back (grpc-js defaults: 1 s, then up to 120 s). */
const RECONNECT = { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 2000 } as const;

/**
 * `inner` credentials whose connections still in their handshake are
 * destroyed by close(), and refused once it was called. Equal only to
 * itself: grpc-js then shares no connection between two pools.
 */
export class ClosingCredentials extends grpc.ChannelCredentials {
  private readonly handshaking = new Set<Socket>();
  private closed = false;

  constructor(private readonly inner: grpc.ChannelCredentials) {
    super();
  }

  _isSecure(): boolean {
    return this.inner._isSecure();
  }

  _equals(other: grpc.ChannelCredentials): boolean {
    return other === this;
  }

  _createSecureConnector(...args: ConnectorArgs): grpc.experimental.SecureConnector {
    const inner = this.inner._createSecureConnector(...args);
    return {
      connect: (socket) => this.handshake(socket, inner),
      waitForReady: () => inner.waitForReady(),
      getCallCredentials: () => inner.getCallCredentials(),
      destroy: () => inner.destroy(),
    };
  }

  /** Destroys every socket still in its handshake (its connect fails); later ones are refused. */
  close(): void {
    this.closed = true;
    for (const socket of this.handshaking) socket.destroy(new Error("the client was closed during the connection's handshake"));
    this.handshaking.clear();
  }

  private handshake(socket: Socket, inner: grpc.experimental.SecureConnector): Promise<grpc.experimental.SecureConnectResult> {
    if (this.closed) {
      socket.destroy();
      return Promise.reject(new Error("the client is closed"));
    }
    this.handshaking.add(socket);
    const settled = () => this.handshaking.delete(socket);
    const result = inner.connect(socket);
    result.then(settled, settled);
    return result;
  }
}

/** One channel per address to the nodes of one service, whose calls and connections close() ends. */
export class ChannelPool<T extends GenServiceMethods> {
  private readonly channels = new Map<string, { client: UnaryClient<T>; channel: grpc.Client }>();
  private readonly credentials: ClosingCredentials;
  private readonly aborter = new AbortController();

  constructor(private readonly service: GenService<T>, credentials: grpc.ChannelCredentials) {
    this.credentials = new ClosingCredentials(credentials);
  }

  /** Aborted by close(): give it to every call made on the pool's channels (UnaryCallOptions.signal). */
  get signal(): AbortSignal {
    return this.aborter.signal;
  }

  /** Throws ClientError CLOSED once close() was called. */
  assertOpen(): void {
    if (this.aborter.signal.aborted) throw new ClientError("CLOSED", "the client is closed");
  }

  /** The typed unary client of `address`'s channel (made on first use). */
  unary(address: string): UnaryClient<T> {
    return this.entry(address).client;
  }

  /** The grpc-js channel of `address` (made on first use), for streaming calls. */
  channel(address: string): grpc.Client {
    return this.entry(address).channel;
  }

  /** Cancels the calls in flight, closes every channel and destroys connections still in their handshake. */
  close(): void {
    this.aborter.abort();
    for (const c of this.channels.values()) c.channel.close();
    this.channels.clear();
    this.credentials.close();
  }

  private entry(address: string): { client: UnaryClient<T>; channel: grpc.Client } {
    this.assertOpen();
    let c = this.channels.get(address);
    if (c === undefined) {
      c = unaryClient(this.service, address, this.credentials, RECONNECT);
      this.channels.set(address, c);
    }
    return c;
  }
}

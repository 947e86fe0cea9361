// gRPC channels to vault nodes, one per address, and typed unary calls
// (proto/rpc.ts unaryClient). A failed call rejects with the typed RpcError
// of client/sdk/errors.ts, or a ClientError for a closed client.
import * as grpc from "@grpc/grpc-js";
import type { MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { VaultService } from "../../proto/gen/bkv/v1/vault_pb.js";
import { type UnaryClient, unaryClient } from "../../proto/rpc.js";
import { ClientError, isServiceError, rpcErrorFrom } from "./errors.js";
import { type TokenProvider, bearerMetadata, requestUser, tokenFor } from "./auth.js";

type Methods = typeof VaultService.method;
export type MethodName = keyof Methods;
export type RequestOf<M extends MethodName> = MessageInitShape<Methods[M]["input"]>;
export type ResponseOf<M extends MethodName> = MessageShape<Methods[M]["output"]>;
type VaultUnary = UnaryClient<Methods>;

export interface TransportOptions {
  /** PEM CA for TLS; undefined = plaintext. */
  readonly tlsCa?: string | undefined;
  /** The bearer token of each call (auth.ts); undefined: calls carry none (a node with authentication off). */
  readonly token?: TokenProvider | undefined;
}

/** A pool of channels keyed by address. close() closes them all. */
export class Transport {
  private readonly channels = new Map<string, { client: VaultUnary; channel: grpc.Client }>();
  private readonly credentials: grpc.ChannelCredentials;
  private closed = false;

  private readonly token: TokenProvider | undefined;

  constructor(options: TransportOptions = {}) {
    this.token = options.token;
    this.credentials = options.tlsCa === undefined
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(Buffer.from(options.tlsCa));
  }

  /** One unary call to `address`, failing after `timeoutMs` (and so does waiting for its token: TokenError). */
  async call<M extends MethodName>(address: string, method: M, request: RequestOf<M>, timeoutMs: number): Promise<ResponseOf<M>> {
    const fn = this.client(address)[method] as unknown as (req: RequestOf<M>, o: { deadline: Date; metadata?: grpc.Metadata }) => Promise<ResponseOf<M>>;
    const metadata = this.token === undefined ? undefined : bearerMetadata(await tokenFor(this.token, requestUser(request), timeoutMs));
    try {
      return await fn(request, { deadline: new Date(Date.now() + timeoutMs), ...(metadata === undefined ? {} : { metadata }) });
    } catch (err) {
      throw isServiceError(err) ? rpcErrorFrom(err, VaultService.method[method].name, address) : err;
    }
  }

  /** Throws ClientError CLOSED once close() was called. */
  assertOpen(): void {
    if (this.closed) throw new ClientError("CLOSED", "the client is closed");
  }

  private client(address: string): VaultUnary {
    this.assertOpen();
    let c = this.channels.get(address);
    if (c === undefined) {
      c = unaryClient(VaultService, address, this.credentials, {
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 2000,
      });
      this.channels.set(address, c);
    }
    return c.client;
  }

  close(): void {
    this.closed = true;
    for (const c of this.channels.values()) c.channel.close();
    this.channels.clear();
  }
}

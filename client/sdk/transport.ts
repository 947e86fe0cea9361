// Typed unary calls to vault nodes over a ChannelPool (channels.ts): one
// channel per address. A failed call rejects with the typed RpcError of
// client/sdk/errors.ts, or a ClientError for a closed client.
import * as grpc from "@grpc/grpc-js";
import type { MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { VaultService } from "../../proto/gen/bkv/v1/vault_pb.js";
import { isServiceError, rpcErrorFrom } from "./errors.js";
import { ChannelPool } from "./channels.js";
import { type TokenProvider, bearerMetadata, requestUser, tokenFor } from "./auth.js";

type Methods = typeof VaultService.method;
export type MethodName = keyof Methods;
export type RequestOf<M extends MethodName> = MessageInitShape<Methods[M]["input"]>;
export type ResponseOf<M extends MethodName> = MessageShape<Methods[M]["output"]>;

export interface TransportOptions {
  /** PEM CA for TLS; undefined = plaintext. */
  readonly tlsCa?: string | undefined;
  /** The bearer token of each call (auth.ts); undefined: calls carry none (a node with authentication off). */
  readonly token?: TokenProvider | undefined;
}

/** A pool of channels keyed by address. close() ends every call and connection (ChannelPool.close). */
export class Transport {
  private readonly pool: ChannelPool<Methods>;
  private readonly token: TokenProvider | undefined;

  constructor(options: TransportOptions = {}) {
    this.token = options.token;
    const credentials = options.tlsCa === undefined
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(Buffer.from(options.tlsCa));
    this.pool = new ChannelPool(VaultService, credentials);
  }

  /**
   * One unary call to `address`, failing after `timeoutMs` (and so does
   * waiting for its token: TokenError). It carries the token of `tokenUser`:
   * by default the request's user (null for none).
   */
  async call<M extends MethodName>(address: string, method: M, request: RequestOf<M>, timeoutMs: number, tokenUser = requestUser(request)): Promise<ResponseOf<M>> {
    type Options = { deadline: Date; metadata?: grpc.Metadata; signal: AbortSignal };
    const fn = this.pool.unary(address)[method] as unknown as (req: RequestOf<M>, o: Options) => Promise<ResponseOf<M>>;
    const metadata = this.token === undefined ? undefined : bearerMetadata(await tokenFor(this.token, tokenUser, timeoutMs));
    try {
      return await fn(request, { deadline: new Date(Date.now() + timeoutMs), signal: this.pool.signal, ...(metadata === undefined ? {} : { metadata }) });
    } catch (err) {
      throw isServiceError(err) ? rpcErrorFrom(err, VaultService.method[method].name, address) : err;
    }
  }

  /** Throws ClientError CLOSED once close() was called. */
  assertOpen(): void {
    this.pool.assertOpen();
  }

  close(): void {
    this.pool.close();
  }
}

// gRPC channels to vault nodes, one per address, and typed unary calls.
// A failed call rejects with the typed RpcError of client/sdk/errors.ts (or
// with a ClientError for failures that happened before the wire).
import * as grpc from "@grpc/grpc-js";
import type { MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { VaultService } from "../../proto/gen/bkv/v1/vault_pb.js";
import { serviceDefinition } from "../../proto/rpc.js";
import { ClientError, isServiceError, rpcErrorFrom } from "./errors.js";

type Methods = typeof VaultService.method;
export type MethodName = keyof Methods;
export type RequestOf<M extends MethodName> = MessageInitShape<Methods[M]["input"]>;
export type ResponseOf<M extends MethodName> = MessageShape<Methods[M]["output"]>;

type UnaryFn = (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => grpc.ClientUnaryCall;

const VaultClientCtor = grpc.makeGenericClientConstructor(serviceDefinition(VaultService), "VaultService");

export interface TransportOptions {
  /** PEM CA for TLS; undefined = plaintext. */
  readonly tlsCa?: string | undefined;
}

/** A pool of channels keyed by address. close() closes them all. */
export class Transport {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly credentials: grpc.ChannelCredentials;
  private closed = false;

  constructor(options: TransportOptions = {}) {
    this.credentials = options.tlsCa === undefined
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(Buffer.from(options.tlsCa));
  }

  /** One unary call to `address`, failing after `timeoutMs`. */
  call<M extends MethodName>(address: string, method: M, request: RequestOf<M>, timeoutMs: number): Promise<ResponseOf<M>> {
    const client = this.client(address);
    const fn = (client as unknown as Record<string, UnaryFn>)[method];
    if (fn === undefined) throw new Error(`unknown method ${String(method)}`);
    const message = create(VaultService.method[method].input as never, request as never);
    const deadline = new Date(Date.now() + timeoutMs);
    return new Promise((resolve, reject) => {
      fn.call(client, message, new grpc.Metadata(), { deadline }, (err, res) => {
        if (err) reject(isServiceError(err) ? rpcErrorFrom(err, VaultService.method[method].name, address) : err);
        else resolve(res as ResponseOf<M>);
      });
    });
  }

  private client(address: string): grpc.Client {
    if (this.closed) throw new ClientError("CLOSED", "the client is closed");
    let c = this.clients.get(address);
    if (c === undefined) {
      c = new VaultClientCtor(address, this.credentials, {
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 2000,
      });
      this.clients.set(address, c);
    }
    return c;
  }

  close(): void {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

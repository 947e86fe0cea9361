// Protocol glue shared by the node and the client: grpc-js service
// definitions built from protoc-gen-es descriptors, and the structured error
// detail (bkv.v1.ErrorDetail in `grpc-status-details-bin`, see
// proto/bkv/v1/status.proto). No service logic lives here.
//
// protoc-gen-es v2 emits message schemas and service descriptors but no
// grpc-js stubs; `serviceDefinition` turns a GenService into the
// ServiceDefinition that grpc-js `Server.addService` and
// `makeGenericClientConstructor` take.

import { create, fromBinary, toBinary, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import {
  Client,
  Metadata,
  Server,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status as grpcStatus,
  type ServerInterceptor,
  type ServerOptions,
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type MethodDefinition,
  type ServiceDefinition,
  type ServerErrorResponse,
  type StatusObject,
  type handleBidiStreamingCall,
  type handleClientStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type status,
} from "@grpc/grpc-js";
import { ErrorDetailSchema, ErrorReason, StatusSchema, type ErrorDetail } from "./gen/bkv/v1/status_pb.js";
import { DecodeError, decodeStrict } from "./strict.js";
import { type EarlyEndHook, watchEarlyEnds } from "./early-ends.js";

type Method = GenServiceMethods[string];
type Req<M extends Method> = MessageShape<M["input"]>;
type Res<M extends Method> = MessageShape<M["output"]>;

/** The grpc-js method definitions of a service, keyed by the method's localName. */
export type ServiceDefinitionOf<T extends GenServiceMethods> = {
  [K in keyof T]: MethodDefinition<Req<T[K]>, Res<T[K]>>;
};

/** The handler grpc-js expects for a method, by its kind. */
export type HandlerOf<M extends Method> =
  M["methodKind"] extends "unary" ? handleUnaryCall<Req<M>, Res<M>>
  : M["methodKind"] extends "server_streaming" ? handleServerStreamingCall<Req<M>, Res<M>>
  : M["methodKind"] extends "client_streaming" ? handleClientStreamingCall<Req<M>, Res<M>>
  : handleBidiStreamingCall<Req<M>, Res<M>>;

/** A server implementation of a service: one handler per method localName. */
export type ServiceImplementation<T extends GenServiceMethods> = { [K in keyof T]: HandlerOf<T[K]> };

/** `ServiceImplementation` of a generated service value: `ImplementationOf<typeof VaultService>`. */
export type ImplementationOf<S> = S extends GenService<infer T> ? ServiceImplementation<T> : never;

/**
 * What a server's deserializer yields for a body that does not decode.
 * Only `strictServer`'s interceptor sees it. `message` names the method, the
 * body's length and the first rule broken, never the body's bytes.
 */
export class UndecodableRequest {
  constructor(readonly method: string, readonly length: number, readonly message: string) {}
}

/** Builds the grpc-js ServiceDefinition for a protoc-gen-es service descriptor. */
export function serviceDefinition<T extends GenServiceMethods>(service: GenService<T>): ServiceDefinitionOf<T> & ServiceDefinition {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const path = `/${service.typeName}/${method.name}`;
    def[method.localName] = {
      path,
      originalName: method.name,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      // A copy, not a Buffer view: `.buffer` of a fresh array of up to 64 bytes (most peer messages) moves it off V8's heap, ~4x the copy.
      requestSerialize: (msg) => Buffer.from(toBinary(method.input, msg as never)),
      requestDeserialize: (buf: Buffer) => decodeRequest(path, method.input, buf),
      responseSerialize: (msg) => Buffer.from(toBinary(method.output, msg as never)),
      responseDeserialize: (buf: Buffer) => fromBinary(method.output, plain(buf)),
    };
  }
  return def as ServiceDefinitionOf<T> & ServiceDefinition;
}

function decodeRequest(path: string, schema: Method["input"], buf: Buffer): unknown {
  try {
    return decodeStrict(schema, plain(buf));
  } catch (err) {
    const why = err instanceof DecodeError ? err.message : `${schema.typeName}: does not parse`;
    return new UndecodableRequest(path, buf.length, `the request body (${buf.length} bytes) is not a valid ${schema.typeName}: ${why}`);
  }
}

/**
 * grpc-js options of every bkv channel: channelz off. Nothing reads channelz,
 * and its bookkeeping (call counters, a trace and a socket ref per
 * connection, timestamps per call) is work on every call's path. Not on
 * servers: in grpc-js 1.14.7 a server without channelz does not track its
 * sessions, and forceShutdown then leaves its connections open.
 */
export const NO_CHANNELZ = { "grpc.enable_channelz": 0 } as const;

/** What a strictServer reports; the hooks (logs, metrics) must not throw. */
export interface ServerHooks {
  /** A request body that did not decode; its call ended with INVALID_ARGUMENT. */
  undecodable(req: UndecodableRequest, peer: string): void;
  /** A call that ended before its handler got the request (early-ends.ts). */
  earlyEnd?: EarlyEndHook;
}

/**
 * A grpc-js Server whose every call with an undecodable request body ends
 * with INVALID_ARGUMENT (ErrorReason INVALID_ARGUMENT) before any handler sees
 * it, and which reports calls that end before their handler (watchEarlyEnds,
 * the innermost interceptor).
 */
export function strictServer(hooks: ServerHooks, options: ServerOptions = {}): Server {
  const watch = hooks.earlyEnd === undefined ? [] : [watchEarlyEnds(hooks.earlyEnd)];
  return new Server({ ...options, interceptors: [...watch, ...(options.interceptors ?? []), refuseUndecodable(hooks.undecodable)] });
}

function refuseUndecodable(onRefused: (req: UndecodableRequest, peer: string) => void): ServerInterceptor {
  return (_method, call) => {
    let refused = false;
    const listener = new ServerListenerBuilder()
      .withOnReceiveMessage((msg, next) => {
        if (!(msg instanceof UndecodableRequest)) {
          next(msg);
          return;
        }
        if (refused) return;
        refused = true;
        onRefused(msg, call.getPeer());
        const { code, details, metadata } = errorWithDetail(grpcStatus.INVALID_ARGUMENT, msg.message, { reason: ErrorReason.INVALID_ARGUMENT });
        call.sendStatus({ code, details, metadata });
      })
      .withOnReceiveHalfClose((next) => {
        if (!refused) next();
      })
      .build();
    return new ServerInterceptingCall(call, { start: (next) => next(listener) });
  };
}

/** Options of one unary call made through a UnaryClient. */
export interface UnaryCallOptions extends CallOptions {
  metadata?: Metadata;
  /** Cancels the call when aborted (it then fails CANCELLED); an aborted signal cancels it at once. */
  signal?: AbortSignal;
}

/** Promise-returning unary methods of a service, keyed by localName. */
export type UnaryClient<T extends GenServiceMethods> = {
  [K in keyof T as T[K]["methodKind"] extends "unary" ? K : never]:
    (req: MessageInitShape<T[K]["input"]>, options?: UnaryCallOptions) => Promise<Res<T[K]>>;
};

/**
 * A typed client for the unary methods of `service` on one channel. A failed
 * call rejects with grpc-js's ServiceError (read its detail with
 * `errorDetailOf`). `channel.close()` releases the connection; a call
 * already on it runs until its deadline unless its `signal` aborts.
 */
export function unaryClient<T extends GenServiceMethods>(
  service: GenService<T>, address: string, credentials: ChannelCredentials, options: ChannelOptions = {},
): { client: UnaryClient<T>; channel: Client } {
  const channel = new Client(address, credentials, { ...NO_CHANNELZ, ...options });
  const client: Record<string, (req: never, o?: UnaryCallOptions) => Promise<unknown>> = {};
  for (const method of service.methods) {
    if (method.methodKind !== "unary") continue;
    const path = `/${service.typeName}/${method.name}`;
    client[method.localName] = (req, o = {}) => new Promise((resolve, reject) => {
      const { metadata = new Metadata(), signal, ...callOptions } = o;
      const cancel = () => call.cancel();
      const call = channel.makeUnaryRequest(
        path, (msg) => Buffer.from(toBinary(method.input, msg)), (buf) => fromBinary(method.output, plain(buf)),
        create(method.input, req), metadata, callOptions, (err, value) => {
          signal?.removeEventListener("abort", cancel);
          if (err) reject(err);
          else resolve(value);
        },
      );
      if (signal?.aborted) cancel();
      else signal?.addEventListener("abort", cancel, { once: true });
    });
  }
  return { client: client as unknown as UnaryClient<T>, channel };
}

/** A plain Uint8Array view of a Buffer, so that decoded bytes fields are never Buffers. */
function plain(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** The trailer that carries a binary bkv.v1.Status (google.rpc.Status encoding). */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

/**
 * A grpc-js error status carrying `detail` in `grpc-status-details-bin`.
 * Pass it to a unary callback or `call.emit("error", ...)` on a stream.
 * `message` is shown to clients: it must not contain secrets.
 */
export function errorWithDetail(
  code: status, message: string, detail?: MessageInitShape<typeof ErrorDetailSchema>,
): ServerErrorResponse & Pick<StatusObject, "code" | "details" | "metadata"> {
  const metadata = new Metadata();
  if (detail !== undefined) {
    const st = create(StatusSchema, {
      code, message, details: [anyPack(ErrorDetailSchema, create(ErrorDetailSchema, detail))],
    });
    metadata.set(STATUS_DETAILS_KEY, Buffer.from(toBinary(StatusSchema, st)));
  }
  return Object.assign(new Error(message), { code, details: message, metadata });
}

/**
 * The ErrorDetail of a failed call (a client-side ServiceError or anything
 * with its trailing metadata), or undefined when absent or unreadable.
 */
export function errorDetailOf(err: { metadata?: Metadata | undefined }): ErrorDetail | undefined {
  const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!(raw instanceof Uint8Array)) return undefined;
  try {
    const st = fromBinary(StatusSchema, raw);
    for (const any of st.details) {
      const detail = anyUnpack(any, ErrorDetailSchema);
      if (detail !== undefined) return detail;
    }
  } catch {
    // A malformed trailer is treated as absent: the status code still holds.
  }
  return undefined;
}

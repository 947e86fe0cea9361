// A service implementation for tests of the layers below the services
// (the connection gate, the early-end watch): every method of the service
// is `handler`, whatever its name.
import type * as grpc from "@grpc/grpc-js";

/** An implementation whose every method is `handler`. */
export function everyMethod(handler: grpc.handleUnaryCall<never, never>): grpc.UntypedServiceImplementation {
  return new Proxy({}, { get: () => handler }) as grpc.UntypedServiceImplementation;
}

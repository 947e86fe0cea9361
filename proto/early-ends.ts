// Calls that end before their handler is given the request, for the reasons
// no bkv code sees otherwise: grpc-js refuses them itself (a message over
// the size cap, a compressed one that inflates past it or that does not
// inflate, an unknown compression, a malformed timeout header), or the
// caller left first (cancelled, disconnected, its deadline passed), or a
// unary method got no request message or two.
//
// The watch is the innermost server interceptor: a status that the other
// interceptors or grpc-js's unary handling send passes through it, one that
// grpc-js's base call sends (its refusals above) does not; that call only
// ends, and the watch hears onCancel with no status before it.
import { ServerInterceptingCall, ServerListenerBuilder, ResponderBuilder, status as grpcStatus, type ServerInterceptor } from "@grpc/grpc-js";

/**
 * Why a call ended before its handler got it. `before_request`: no status
 * passed through the watch (grpc-js refused the request, or the caller
 * left). `unary_framing`: grpc-js answered UNIMPLEMENTED to a unary or
 * server-streaming call with no request message or more than one.
 */
export type EarlyEndStage = "before_request" | "unary_framing";

export type EarlyEndHook = (method: string, peer: string, stage: EarlyEndStage) => void;

/**
 * Reports each call that ended before grpc-js handed its request to the
 * handler, once, with the stage. Statuses sent by other interceptors (an
 * undecodable body, a refused admin caller) are theirs to report and are not
 * reported here. Streaming-request methods get their handler at once: not
 * watched. `onEarlyEnd` must not throw.
 */
export function watchEarlyEnds(onEarlyEnd: EarlyEndHook): ServerInterceptor {
  return (method, call) => {
    if (method.requestStream) return new ServerInterceptingCall(call);
    let messages = 0;
    let handed = false;
    let settled = false;
    const early = (stage: EarlyEndStage): void => {
      if (settled) return;
      settled = true;
      if (!handed) onEarlyEnd(method.path, call.getPeer(), stage);
    };
    const listener = new ServerListenerBuilder()
      .withOnReceiveMessage((msg, next) => { messages++; next(msg); })
      .withOnReceiveHalfClose((next) => { handed = messages === 1; next(); })
      .withOnCancel(() => early("before_request"))
      .build();
    const responder = new ResponderBuilder()
      .withStart((next) => next(listener))
      .withSendStatus((status, next) => {
        if (status.code === grpcStatus.UNIMPLEMENTED) early("unary_framing");
        settled = true;
        next(status);
      })
      .build();
    return new ServerInterceptingCall(call, responder);
  };
}

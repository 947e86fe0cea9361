// Bearer tokens on every VaultService call (docs/client.md "Tokens"): the
// token provider is asked for a token for the request's user (null for a
// call about no user: GetClusterDescriptor) and `authorization: Bearer
// <token>` goes with the call. Transport does it per call; bearerInterceptor
// does it for a raw grpc-js client (test harnesses, tools). Tokens never
// appear in errors.
import { InterceptingCall, Metadata, status, type InterceptingListener, type Interceptor } from "@grpc/grpc-js";
import { TokenError } from "./errors.js";

/**
 * A fixed token, or a function returning a token for a user id (null: a call
 * about no user, which any valid token of the cluster may make). The function
 * is called once per RPC: return the user's current token and mint a new one
 * only when it nears expiry (the development provider renews at half its
 * lifetime). Nodes cache the signatures they verified, so a reused token
 * costs them its claims only; a fresh token per call costs a signature.
 */
export type TokenProvider = string | ((userId: string | null) => string | Promise<string>);

/** The user id a request concerns (its user_id field), or null. */
export function requestUser(request: unknown): string | null {
  const user = (request as { userId?: unknown } | null)?.userId;
  return typeof user === "string" ? user : null;
}

/**
 * The token for a call about `user`; TokenError when the provider throws,
 * returns no usable token, or has not answered within `timeoutMs` (the
 * call's own timeout: a provider that never answers must not hold a call
 * past every deadline).
 */
export async function tokenFor(provider: TokenProvider, user: string | null, timeoutMs = Infinity): Promise<string> {
  let token: unknown;
  try {
    token = typeof provider === "string" ? provider : await askWithin(provider, user, timeoutMs);
  } catch (err) {
    if (err instanceof TokenError) throw err;
    throw new TokenError(`the token provider failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (typeof token !== "string" || token === "" || /\s/.test(token)) {
    throw new TokenError("the token provider returned no token (not a string, empty, or with whitespace)");
  }
  return token;
}

/** The provider's answer, or a TokenError once `timeoutMs` passed without one. */
async function askWithin(provider: (userId: string | null) => string | Promise<string>, user: string | null, timeoutMs: number): Promise<unknown> {
  const answer = Promise.resolve().then(() => provider(user));
  if (!Number.isFinite(timeoutMs)) return answer;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TokenError(`the token provider did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The call metadata carrying `token`. */
export function bearerMetadata(token: string): Metadata {
  const m = new Metadata();
  m.set("authorization", `Bearer ${token}`);
  return m;
}

/**
 * A client interceptor adding `authorization: Bearer <token>` from `provider`
 * to every unary call of a raw grpc-js client: the call starts only once the
 * request (and so its user) is known. A failing provider ends the call here
 * with UNAUTHENTICATED, before anything is sent.
 */
export function bearerInterceptor(provider: TokenProvider): Interceptor {
  return (options, nextCall) => {
    let started: { metadata: Metadata; listener: InterceptingListener; next: (m: Metadata, l: InterceptingListener) => void } | undefined;
    return new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        started = { metadata, listener, next };
      },
      sendMessage(message, next) {
        const s = started;
        if (s === undefined) throw new Error("bearerInterceptor: message before start");
        tokenFor(provider, requestUser(message)).then(
          (token) => {
            s.metadata.set("authorization", `Bearer ${token}`);
            s.next(s.metadata, s.listener);
            next(message);
          },
          (err: unknown) => {
            // Never started: the status goes straight to the caller (grpc-js short-circuit).
            s.listener.onReceiveStatus({ code: status.UNAUTHENTICATED, details: `no token: ${err instanceof Error ? err.message : String(err)}`, metadata: new Metadata() });
          },
        );
      },
    });
  };
}

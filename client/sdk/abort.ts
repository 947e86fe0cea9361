// Abortable SDK calls (docs/client.md "Aborting"). Contracts:
// - a call whose signal is already aborted sends nothing and throws
//   AbortError (sent: false);
// - once the signal aborts, the call rejects with AbortError at once, and no
//   request that counts an attempt or stores a record (the gate's pass())
//   is sent after that; `sent` says whether one was sent before;
// - calls already sent are not cancelled (close() does that): what was under
//   way runs on in the background up to the next gate, or to its end.
import { ClientError } from "./errors.js";

/** An SDK call stopped by its AbortSignal. `name` is "AbortError", as for fetch. */
export class AbortError extends ClientError {
  /** Whether the request that counts or stores (BeginRecovery, Register) was sent, or on its way, before the abort. */
  readonly sent: boolean;
  constructor(what: string, sent: boolean) {
    super("ABORTED", sent
      ? `the ${what} was aborted after ${what === "registration" ? "Register" : "BeginRecovery"} was sent: ` +
        (what === "registration" ? "the record may be stored, unverified" : "its attempt counts unless the recovery, which goes on in the background, confirms it")
      : `the ${what} was aborted before anything that counts an attempt or stores a record was sent`);
    this.sent = sent;
  }
}

/** Where an abortable call may send what counts or stores. */
export class AbortGate {
  private sentBefore = false;
  constructor(private readonly signal: AbortSignal | undefined, private readonly what: "recovery" | "registration") {}

  /** Call right before sending what counts or stores: throws AbortError once aborted. */
  pass(): void {
    if (this.signal?.aborted) throw this.error();
    this.sentBefore = true;
  }

  get aborted(): boolean {
    return this.signal?.aborted ?? false;
  }

  error(): AbortError {
    return new AbortError(this.what, this.sentBefore);
  }
}

/** Runs `op` with a gate on `signal`; rejects with the gate's AbortError as soon as `signal` aborts. */
export async function abortable<T>(signal: AbortSignal | undefined, what: "recovery" | "registration", op: (gate: AbortGate) => Promise<T>): Promise<T> {
  const gate = new AbortGate(signal, what);
  if (signal === undefined) return op(gate);
  if (signal.aborted) throw gate.error();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(gate.error());
    signal.addEventListener("abort", onAbort, { once: true });
  });
  const running = op(gate);
  running.catch(() => {}); // after an abort its end is nobody's: the caller has the AbortError
  try {
    return await Promise.race([running, aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

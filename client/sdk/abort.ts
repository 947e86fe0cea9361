// Abortable SDK calls (docs/client.md "Aborting"). Contracts:
// - a call whose signal is already aborted sends nothing and throws
//   AbortError (sent: false);
// - once the signal aborts, the call rejects with AbortError at once, and no
//   request that counts an attempt or stores a record (the gate's pass())
//   is sent after that; `sent` says whether one was sent before;
// - a password change or a deletion recovers first (its BeginRecovery passes
//   the gate), then sends its new record or Delete through the gate again
//   (passChange): nothing is changed after the abort;
// - calls already sent are not cancelled (close() does that): what was under
//   way runs on in the background up to the next gate, or to its end.
import { ClientError } from "./errors.js";

/** The SDK calls that take an AbortSignal, as their AbortError names them. */
export type AbortableCall = "recovery" | "registration" | "password check" | "password change" | "deletion";

/** How far an abortable call got: nothing sent, what counts or stores (BeginRecovery, Register), then a change's own request. */
type Stage = "none" | "sent" | "changeSent";

/** An SDK call stopped by its AbortSignal. `name` is "AbortError", as for fetch. */
export class AbortError extends ClientError {
  /** Whether the request that counts or stores (BeginRecovery, Register) was sent, or on its way, before the abort. */
  readonly sent: boolean;
  constructor(what: AbortableCall, stage: Stage) {
    super("ABORTED", `the ${what} was aborted ${abortedWhen(what, stage)}`);
    this.sent = stage !== "none";
  }
}

function abortedWhen(what: AbortableCall, stage: Stage): string {
  if (stage === "none") return "before anything that counts an attempt or stores a record was sent";
  if (what === "registration") return "after Register was sent: the record may be stored, unverified";
  if (stage === "changeSent") return what === "deletion" ? "after Delete was sent: the record may be deleted" : "after the new record was sent: the password may be changed";
  const attempt = "after BeginRecovery was sent: its attempt counts unless the recovery, which goes on in the background, confirms it";
  return what === "password change" || what === "deletion" ? `${attempt}; no ${what === "deletion" ? "Delete" : "new record"} is sent after the abort` : attempt;
}

/** Where an abortable call may send what counts or stores, and a password change or deletion its own request. */
export class AbortGate {
  private stage: Stage = "none";
  constructor(private readonly signal: AbortSignal | undefined, private readonly what: AbortableCall) {}

  /** Call right before sending what counts or stores: throws AbortError once aborted. */
  pass(): void {
    if (this.signal?.aborted) throw this.error();
    if (this.stage === "none") this.stage = "sent";
  }

  /** Call right before a password change's new record, or a deletion's Delete: throws AbortError once aborted. */
  passChange(): void {
    if (this.signal?.aborted) throw this.error();
    this.stage = "changeSent";
  }

  get aborted(): boolean {
    return this.signal?.aborted ?? false;
  }

  error(): AbortError {
    return new AbortError(this.what, this.stage);
  }
}

/** Runs `op` with a gate on `signal`; rejects with the gate's AbortError as soon as `signal` aborts. */
export async function abortable<T>(signal: AbortSignal | undefined, what: AbortableCall, op: (gate: AbortGate) => Promise<T>): Promise<T> {
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

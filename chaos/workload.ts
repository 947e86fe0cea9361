// The chaos workload: concurrent clients (client/sdk VaultClient) registering,
// recovering with right and wrong passwords, changing passwords, deleting and
// reading records, recording every operation in the history.
//
// Outcomes: an error that proves the operation had no effect beyond what it
// reports (wrong password, locked, not found, exists, invalid input) is `fail`;
// every other error (unavailable, timeouts, too few evaluations, unverified
// registration, mismatches) is `info`: it may have taken effect.
// passwordCorrect=false is recorded only for passwords never set for the user.
// Which password an operation used or set is recorded as its sequence number
// (passwordSeq / setsPasswordSeq), never the password; every completion records
// the codes of the SDK warnings raised during the operation (warnings).
import { randomBytes } from "node:crypto";
import { ClientError, generateKey, RecordExistsError, RecordLockedError, RecordNotFoundError, RpcError, VaultClient, WrongPasswordError, type ClientWarning, type ClusterDescriptor, type TokenProvider, type WarningCode } from "../client/sdk/index.js";
import type { HistoryWriter, OpName, OpValue, Outcome } from "./history.js";
import { seededRandom } from "./nemesis.js";

export interface UserModel {
  /** Every password ever (possibly) set, oldest first (never-set ones are still "correct" for passwordCorrect). */
  passwords: string[];
  /** Passwords whose register / change-password did not certainly fail: the record's password is one of these. */
  possible: string[];
  /** The last password acknowledged as current, if any. */
  current: string | undefined;
  /** Every key ever (possibly) registered (hex). */
  keys: Set<string>;
}

export interface WorkloadOptions {
  descriptor: ClusterDescriptor;
  /** The SDK clients' bearer tokens (ChaosTarget.token). */
  token?: TokenProvider | undefined;
  clients: number;
  users: string[];
  guessLimit: number;
  seed: string;
  history: HistoryWriter;
  /** Reads one node's view of a record (GetRecordInfo on that node), or null when absent. */
  readNode: (node: number, user: string) => Promise<{ version: number; attemptsRemaining: number; locked: boolean } | null>;
  nodes: readonly number[];
  /** Called when a recovery (recover, change-password, delete) is invoked. */
  onRecoveryStart?: (user: string) => void;
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

export function newUserModel(): UserModel {
  return { passwords: [], possible: [], current: undefined, keys: new Set() };
}

export function clientOptions(onWarning: (w: ClientWarning) => void, token?: TokenProvider) {
  return { scrypt: { N: 1024, r: 8, p: 1 }, retry: { deadlineMs: 8000, callTimeoutMs: 2000 }, readBackTimeoutMs: 4000, onWarning, ...(token === undefined ? {} : { token }) } as const;
}

/**
 * Whether the recovery's own ConfirmRecovery committed, from the SDK's
 * warning codes (never their text): the SDK returns the key with a warning
 * when the confirmation did not commit (cluster unavailable) or was refused
 * because a concurrent recovery's confirmation settled the attempt first.
 */
export function ownConfirmationCommitted(warnings: readonly ClientWarning[]): boolean {
  return !warnings.some((w) => VOIDS_CONFIRMATION.has(w.code));
}

const VOIDS_CONFIRMATION: ReadonlySet<WarningCode> = new Set<WarningCode>(["CONFIRM_UNAVAILABLE", "CONFIRM_SUPERSEDED"]);

/** "method:REASON" of a server status (the SDK's message starts with the method name). */
function rpcReason(err: RpcError): string {
  return `${err.message.split(" ")[0] ?? "?"}:${err.reason}`;
}

/** Maps an SDK error to an outcome and the recorded value. */
export function classifyError(err: unknown): { type: "fail" | "info"; value: OpValue } {
  if (err instanceof WrongPasswordError) return { type: "fail", value: { error: "WRONG_PASSWORD", attemptsRemaining: err.attemptsRemaining } };
  if (err instanceof RecordLockedError) return { type: "fail", value: { error: "RECORD_LOCKED", reason: `${err.method}:RECORD_LOCKED` } };
  // The method tells a record absent when read from one deleted after this operation's attempt was counted.
  if (err instanceof RecordNotFoundError) return { type: "fail", value: { error: "RECORD_NOT_FOUND", reason: rpcReason(err) } };
  if (err instanceof RecordExistsError) return { type: "fail", value: { error: "RECORD_EXISTS" } };
  if (err instanceof ClientError && err.code === "INVALID_INPUT") return { type: "fail", value: { error: "INVALID_INPUT" } };
  // BeginRecovery refused because the record changed since it was read: no attempt was counted, nothing changed.
  if (err instanceof RpcError && err.reason === "RECORD_CHANGED") return { type: "fail", value: { error: "RECORD_CHANGED", reason: rpcReason(err) } };
  const reason = err instanceof RpcError ? { reason: rpcReason(err) } : {};
  return { type: "info", value: { error: err instanceof ClientError ? err.code : err instanceof Error ? err.name : "UNKNOWN", ...reason } };
}

type OpKind = "register" | "recover-right" | "recover-wrong" | "change-password" | "delete" | "read";
const WEIGHTS: readonly [OpKind, number][] = [["register", 2], ["recover-right", 4], ["recover-wrong", 3], ["change-password", 1], ["delete", 1], ["read", 3]];

export class Workload {
  readonly models = new Map<string, UserModel>();
  private stopped = false;
  private passwordCounter = 0;
  /** The sequence number of every password the workload made (recorded instead of the password). */
  private readonly passwordSeq = new Map<string, number>();
  /** Per process: the SDK warnings of its current operation. */
  private readonly warnings = new Map<number, ClientWarning[]>();
  /** Users in play. A user seen locked is retired (a locked record can never be opened, overwritten or deleted) and replaced by a fresh one. */
  private readonly active: string[];

  constructor(private readonly o: WorkloadOptions) {
    this.active = [...o.users];
    for (const u of o.users) this.models.set(u, newUserModel());
  }

  /** Every user the workload touched, in order of first use. */
  get users(): string[] {
    return [...this.models.keys()];
  }

  /** The error of each process's last completed operation. */
  private readonly lastError = new Map<number, string | undefined>();

  private retireIfLocked(process: number, user: string): void {
    if (this.lastError.get(process) !== "RECORD_LOCKED") return;
    const i = this.active.indexOf(user);
    if (i < 0) return;
    const fresh = `user-${this.models.size + 1}`;
    this.models.set(fresh, newUserModel());
    this.active[i] = fresh;
  }

  stop(): void {
    this.stopped = true;
  }

  /** Runs every client until stop(); resolves when all have finished their current operation. */
  async run(): Promise<void> {
    await Promise.all(Array.from({ length: this.o.clients }, (_, i) => this.runClient(i + 1)));
  }

  private async runClient(process: number): Promise<void> {
    const client = new VaultClient(this.o.descriptor, clientOptions(this.warningSink(process), this.o.token));
    const rnd = seededRandom(`${this.o.seed}/client/${process}`);
    try {
      while (!this.stopped) {
        const user = this.active[Math.floor(rnd() * this.active.length)]!;
        await this.step(process, client, user, pickKind(rnd), rnd);
        this.retireIfLocked(process, user);
      }
    } finally {
      client.close();
    }
  }

  /** After a register / change-password with `pw`: current when acknowledged, dropped from `possible` when it certainly failed. */
  private settle(m: UserModel, pw: string, outcome: Outcome): void {
    if (outcome === "ok") m.current = pw;
    if (outcome !== "fail") m.possible.push(pw);
  }

  private freshPassword(user: string): string {
    const seq = ++this.passwordCounter;
    const pw = `pw-${user}-${seq}-${randomBytes(4).toString("hex")}`;
    this.passwordSeq.set(pw, seq);
    return pw;
  }

  /** The recorded name of a password the workload made ({} for one it did not make). */
  passwordTag(pw: string): OpValue {
    const n = this.passwordSeq.get(pw);
    return n === undefined ? {} : { passwordSeq: n };
  }

  /** The onWarning of `process`'s client: collects the warnings of its current operation. */
  warningSink(process: number): (w: ClientWarning) => void {
    return (w) => this.warnings.get(process)?.push(w);
  }

  /** The codes of the warnings the SDK raised so far in `process`'s current operation. */
  private warningCodes(process: number): string[] {
    return (this.warnings.get(process) ?? []).map((w) => w.code);
  }

  /** Runs one operation and records it (invoke, then ok / fail / info). */
  async record(process: number, op: OpName, user: string, input: OpValue, body: () => Promise<OpValue>): Promise<Outcome> {
    const h = this.o.history;
    this.warnings.set(process, []);
    h.invoke(process, op, user, input);
    this.lastError.set(process, undefined);
    try {
      const out = await body();
      h.complete("ok", process, op, user, { ...out, warnings: this.warningCodes(process) });
      return "ok";
    } catch (err) {
      const { type, value } = classifyError(err);
      h.complete(type, process, op, user, { ...value, warnings: this.warningCodes(process) });
      this.lastError.set(process, value.error);
      return type;
    }
  }

  private async step(p: number, client: VaultClient, user: string, kind: OpKind, rnd: () => number): Promise<void> {
    const m = this.models.get(user)!;
    const known = m.current ?? m.passwords.at(-1);
    switch (kind) {
      case "register": {
        const pw = this.freshPassword(user);
        const key = generateKey();
        m.passwords.push(pw);
        m.keys.add(hex(key));
        const outcome = await this.record(p, "register", user, { guessLimit: this.o.guessLimit, version: 1, setsPasswordSeq: this.passwordSeq.get(pw)! }, async () => {
          await client.register(user, pw, { backupKey: key, guessLimit: this.o.guessLimit });
          return { version: 1 };
        });
        this.settle(m, pw, outcome);
        return;
      }
      case "recover-right":
      case "recover-wrong": {
        const right = kind === "recover-right" && known !== undefined;
        const pw = right ? known : `wrong-${randomBytes(6).toString("hex")}`;
        this.o.onRecoveryStart?.(user);
        await this.record(p, "recover", user, { passwordCorrect: right, ...this.passwordTag(pw) }, async () => {
          const key = await client.recover(user, pw);
          return { keyReleased: true, keyMatches: m.keys.has(hex(key)), confirmed: ownConfirmationCommitted(this.warnings.get(p) ?? []) };
        });
        return;
      }
      case "change-password": {
        if (known === undefined) return;
        const pw = this.freshPassword(user);
        m.passwords.push(pw);
        this.o.onRecoveryStart?.(user);
        const outcome = await this.record(p, "change-password", user, { passwordCorrect: true, ...this.passwordTag(known), setsPasswordSeq: this.passwordSeq.get(pw)! }, async () => {
          await client.changePassword(user, known, pw);
          return {};
        });
        this.settle(m, pw, outcome);
        return;
      }
      case "delete": {
        if (known === undefined || rnd() < 0.5) return;
        this.o.onRecoveryStart?.(user);
        const outcome = await this.record(p, "delete", user, { passwordCorrect: true, ...this.passwordTag(known) }, async () => {
          await client.delete(user, known);
          return {};
        });
        // A deleted record's password opens nothing again (a re-registration has a new one).
        if (outcome === "ok" && m.current === known) m.current = undefined;
        return;
      }
      case "read": {
        const node = this.o.nodes[Math.floor(rnd() * this.o.nodes.length)]!;
        await this.record(p, "read-attempts", user, {}, async () => {
          const r = await this.o.readNode(node, user);
          return r === null ? { node, error: "RECORD_NOT_FOUND" } : { node, attemptsRemaining: r.attemptsRemaining, version: r.version };
        });
        return;
      }
    }
  }
}

function pickKind(rnd: () => number): OpKind {
  const total = WEIGHTS.reduce((n, [, w]) => n + w, 0);
  let r = rnd() * total;
  for (const [k, w] of WEIGHTS) if ((r -= w) < 0) return k;
  return "read";
}

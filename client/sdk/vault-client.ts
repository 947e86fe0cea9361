// VaultClient: register, recover, verify, change and delete a password-
// protected backup key on a bkv cluster (DESIGN §5), against a pinned
// cluster descriptor.
//
// Contracts:
// - every mutating call carries a 16-byte random request id made once per
//   logical operation; every retry of it reuses that id;
// - mutating calls go to the last known leader, follow ErrorDetail
//   leader_address hints at once when they name a pinned node's address
//   (never an address outside the descriptor), otherwise rotate through the descriptor's
//   nodes with jittered exponential backoff, and end with UnavailableError
//   after the retry deadline;
// - a registration is reported only after t+1 nodes serve its digest;
// - a recovery uses only evaluations signed by the pinned identity keys, and
//   neither a recovery nor a registration sends anything that counts or
//   stores once a majority of the pinned nodes disown the descriptor
//   (cluster-check.ts: ClusterMismatchError);
// - no single node decides a recovery's outcome: a record is believed locked
//   (or newer than another node's answer) only when a majority of the pinned
//   nodes serve it so (records.ts recordQuorum), and a refusal of
//   BeginRecovery or Evaluate as locked, superseded or not found only when
//   that many nodes give it; a lone one is retried elsewhere or reported as
//   a disagreement (RecordMismatchError) or too few evaluations.
import { randomBytes } from "node:crypto";
import {
  DEFAULT_SCRYPT,
  InsufficientEvaluationsError,
  InvalidArgumentError,
  OprfInconsistentEvaluationsError,
  OprfWrongPasswordError,
  type RecordPublicPart,
  type Recovery,
  type Registration,
  type RegistrationInput,
  type RegistrationRecord,
  type ScryptParams,
  RecoveryRecordMismatchError,
  createRegistrationAsync,
  equalBytes,
  finishRecovery,
  signConfirm,
  signDelete,
  startRecoveryAsync,
  validateUserId,
} from "../../proto/crypto/index.js";
import type { ClusterDescriptor, NodeEntry } from "./descriptor.js";
import {
  AttemptSupersededError,
  ClientError,
  InconsistentEvaluationsError,
  InvalidInputError,
  NotEnoughEvaluationsError,
  RecordChangedError,
  RecordLockedError,
  RecordMismatchError,
  RecordNotFoundError,
  RpcError,
  bindingNotTaken,
  confirmNotCommitted,
  unboundNotTaken,
  TransientError,
  UnverifiedRegistrationError,
  WrongPasswordError,
} from "./errors.js";
import { type Collection, collectEvaluations, refusalOf } from "./evaluations.js";
import { gatherWithGrace } from "./gather.js";
import { ClusterCheck, checkCluster } from "./cluster-check.js";
import { type AbortGate, abortable } from "./abort.js";
import { KEY_BYTES, generateKey } from "./key.js";
import { type PublicRecord, agreeOnRecord, publicRecordFrom, recordQuorum, registerRequest } from "./records.js";
import { DEFAULT_RETRY, REDIRECT, type RetryPolicy, isTransient, withRetries } from "./retry.js";
import { type MethodName, type RequestOf, type ResponseOf, Transport } from "./transport.js";
import { type ClusterStatus, probeCluster } from "./status.js";
import type { ClientWarning, WarningCode } from "./warnings.js";
import type { TokenProvider } from "./auth.js";

export const DEFAULT_GUESS_LIMIT = 10;
export const REQUEST_ID_BYTES = 16;
/** Reads in a row whose newest state stays unconfirmed while other nodes serve another, before RecordMismatchError. */
const DISPUTED_READS = 3;

export interface VaultClientOptions {
  /** Retry deadlines and backoff (mutations, reads and evaluations). */
  readonly retry?: Partial<RetryPolicy>;
  /** scrypt parameters for new records; default DEFAULT_SCRYPT (tests pass cheaper ones). */
  readonly scrypt?: ScryptParams;
  /** How long to wait for t+1 nodes to serve a new record's digest (default 10 s). */
  readonly readBackTimeoutMs?: number;
  /** Once t evaluations are in, how long to wait for a (t+1)th before combining (default 300 ms). */
  readonly evaluationGraceMs?: number;
  /** Once one node served a record, how long to wait for the others to cross-check it (default 300 ms). */
  readonly readGraceMs?: number;
  /**
   * The bearer token of every call (docs/client.md "Tokens"): a fixed token,
   * or a function of the call's user id (null for a call about no user).
   * Required by nodes with authentication on (the default).
   */
  readonly token?: TokenProvider;
  /** Called with non-fatal problems (e.g. a failed re-share after a membership change); switch on `code`. */
  readonly onWarning?: (warning: ClientWarning) => void;
}

/** Options of every SDK call that counts an attempt or changes a record. */
export interface CallOptions {
  /** Stops the call (abort.ts): nothing that counts, stores or changes is sent after it aborts. */
  readonly signal?: AbortSignal;
}

export interface RegisterOptions extends CallOptions {
  /** The 32-byte key to escrow; a new random one when absent. */
  readonly backupKey?: Uint8Array;
  /** Attempts allowed between two confirmed recoveries, 1-255 (default 10). */
  readonly guessLimit?: number;
  /** Shares needed to recover (default: the descriptor's threshold). */
  readonly threshold?: number;
}

/** What a registration takes besides user, password and key. */
type RecordParams = Pick<RegistrationInput, "threshold" | "guessLimit" | "version" | "previousResetPrivateKey" | "unboundShares">;

/** The outcome of a recovery, kept inside the client: it holds the reset key. */
interface Opened {
  readonly record: RecordPublicPart;
  readonly recovery: Recovery;
  readonly attemptsRemaining: number;
}

export class VaultClient {
  private readonly transport: Transport;
  private readonly policy: RetryPolicy;
  /** ClusterMismatchError unless the nodes are the pinned cluster (cluster-check.ts): before anything counts or stores. */
  private readonly clusterCheck: ClusterCheck;
  private leader: string | undefined;
  private next = 0;

  constructor(readonly descriptor: ClusterDescriptor, private readonly options: VaultClientOptions = {}) {
    this.transport = new Transport({ tlsCa: descriptor.tlsCa, token: options.token });
    this.policy = { ...DEFAULT_RETRY, ...options.retry };
    this.clusterCheck = new ClusterCheck((user) => checkCluster(this.transport, descriptor, { timeoutMs: this.policy.callTimeoutMs, graceMs: options.readGraceMs ?? 300, user }));
  }

  /** Escrows a backup key under a password; returns the key (new unless given). */
  async register(user: string, password: string, opts: RegisterOptions = {}): Promise<Uint8Array> {
    checkUser(user);
    const backupKey = opts.backupKey ?? generateKey();
    if (!(backupKey instanceof Uint8Array) || backupKey.length !== KEY_BYTES) throw new InvalidInputError(`a backup key is ${KEY_BYTES} bytes`);
    const params = { threshold: opts.threshold ?? this.descriptor.threshold, guessLimit: opts.guessLimit ?? DEFAULT_GUESS_LIMIT };
    await abortable(opts.signal, "registration", (gate) => this.registerRecord(user, password, backupKey, params, async (first) => {
      if (first) await this.clusterCheck.run(user);
      gate.pass();
    }));
    return backupKey;
  }

  /** Recovers the backup key. Throws WrongPasswordError (with attempts remaining), RecordLockedError, AbortError (abort.ts), ... */
  recover(user: string, password: string, opts: CallOptions = {}): Promise<Uint8Array> {
    return abortable(opts.signal, "recovery", async (gate) => {
      const opened = await this.open(user, password, gate);
      if (!gate.aborted) await this.reshareIfMembershipChanged(user, password, opened);
      return opened.recovery.backupKey;
    });
  }

  /** A full recovery and confirmation that does not return the key: true iff the password is right. */
  async verifyPassword(user: string, password: string, opts: CallOptions = {}): Promise<boolean> {
    return (await this.checkPassword(user, password, opts)).ok;
  }

  /** verifyPassword with the attempts remaining after it (the limit again when confirmed). */
  checkPassword(user: string, password: string, opts: CallOptions = {}): Promise<{ ok: boolean; attemptsRemaining: number }> {
    return abortable(opts.signal, "password check", async (gate) => {
      try {
        const opened = await this.open(user, password, gate);
        return { ok: true, attemptsRemaining: opened.attemptsRemaining };
      } catch (err) {
        if (err instanceof WrongPasswordError) return { ok: false, attemptsRemaining: err.attemptsRemaining };
        throw err;
      }
    });
  }

  /** Re-registers the same key under a new password (an overwrite signed by the current reset key). */
  changePassword(user: string, oldPassword: string, newPassword: string, opts: CallOptions = {}): Promise<void> {
    return abortable(opts.signal, "password change", async (gate) => {
      const opened = await this.open(user, oldPassword, gate);
      await this.overwrite(user, newPassword, opened, () => gate.passChange());
    });
  }

  /** Deletes the record (recovering first, to learn the reset key that signs the deletion). */
  delete(user: string, password: string, opts: CallOptions = {}): Promise<void> {
    return abortable(opts.signal, "deletion", async (gate) => {
      const opened = await this.open(user, password, gate);
      const ref = { clusterId: this.descriptor.clusterId, user, version: opened.record.version };
      const ownerSignature = signDelete(opened.recovery.resetPrivateKey, ref);
      gate.passChange();
      await this.mutate("delete", { requestId: newRequestId(), userId: user, version: ref.version, ownerSignature });
    });
  }

  /** Per-node reachability and descriptor agreement; with a user, each node's view of the record. */
  status(user?: string): Promise<ClusterStatus> {
    if (user !== undefined) checkUser(user);
    return probeCluster(this.transport, this.descriptor, this.policy.callTimeoutMs, user);
  }

  /** Ends every call (in flight: CANCELLED), channel and connection of this client (channels.ts); later calls: ClientError CLOSED. */
  close(): void {
    this.transport.close();
  }

  // --- registration ---

  /**
   * Builds and submits a registration with bound shares. A cluster that has
   * not activated them refuses it (bindingNotTaken; nothing stored): it is
   * built and submitted again with unbound shares, and a warning follows its
   * success. One more switch back covers an activation applied between the
   * two (the unbound one refused: unboundNotTaken). A rogue node faking
   * either refusal gains nothing: the cluster's state decides what it takes.
   * `beforeSend` runs before each submission, once its record was built
   * (its inputs valid); `first` for the first one.
   */
  private async registerRecord(user: string, password: string, backupKey: Uint8Array, p: RecordParams, beforeSend?: (first: boolean) => Promise<void>): Promise<void> {
    let unboundShares = false;
    for (let switches = 0; ; switches++) {
      try {
        const reg = await this.createRecord(user, password, backupKey, { ...p, unboundShares });
        await beforeSend?.(switches === 0);
        await this.submit(reg);
        if (unboundShares) this.warn("UNBOUND_SHARES", "the cluster has not activated bound shares: the record was registered with unbound shares");
        return;
      } catch (err) {
        const refusedForm = unboundShares ? unboundNotTaken(err) : bindingNotTaken(err);
        if (!refusedForm || switches >= 2) throw err;
        unboundShares = !unboundShares;
      }
    }
  }

  private async createRecord(user: string, password: string, backupKey: Uint8Array, p: RecordParams): Promise<Registration> {
    return asInputError(() => createRegistrationAsync({
      clusterId: this.descriptor.clusterId, user, password, backupKey, ...p,
      nodes: this.descriptor.nodes.map((n) => ({ id: n.nodeId, agreementPublicKey: n.agreementPublicKey })),
      scrypt: this.options.scrypt ?? DEFAULT_SCRYPT,
    }));
  }

  /** Sends a registration, checks the answer's digest, then reads it back from t+1 nodes. */
  private async submit(reg: Registration): Promise<void> {
    const res = await this.mutate("register", registerRequest(reg, newRequestId(), reg.ownerSignature));
    if (!equalBytes(res.recordDigest, reg.digest)) {
      throw new RecordMismatchError("the cluster committed a record other than the one sent (digest differs)");
    }
    await this.readBack(reg.record, reg.digest);
  }

  /** DESIGN §5 registration step 7: min(t+1, n) distinct nodes must serve the digest we sent. */
  private async readBack(record: RegistrationRecord, digest: Uint8Array): Promise<void> {
    const need = Math.min(record.threshold + 1, this.descriptor.nodes.length);
    const policy = { ...this.policy, deadlineMs: this.options.readBackTimeoutMs ?? 10_000 };
    const problems = new Map<number, string>();
    let confirmed = 0;
    let stopped = false;
    let mismatch: RecordMismatchError | undefined;
    let done: () => void = () => {};
    const enough = new Promise<void>((resolve) => (done = resolve));
    const tasks = this.descriptor.nodes.map(async (node) => {
      try {
        await withRetries(`read-back from node ${node.nodeId}`, policy, () => {
          if (stopped) throw new ClientError("STOPPED", "enough nodes confirmed already");
          return this.confirmDigest(node, record, digest);
        });
        confirmed++;
      } catch (err) {
        if (err instanceof RecordMismatchError) mismatch ??= err;
        problems.set(node.nodeId, err instanceof Error ? err.message : String(err));
      }
      if (confirmed >= need || mismatch !== undefined) done();
    });
    await Promise.race([enough, Promise.all(tasks)]);
    stopped = true;
    if (mismatch !== undefined) throw mismatch;
    if (confirmed < need) {
      const detail = [...problems].map(([id, why]) => `node ${id}: ${why}`).join("; ");
      throw new UnverifiedRegistrationError(confirmed, need, detail);
    }
  }

  /** Resolves when the node serves `digest` for the record; throws a transient error while it lags. */
  private async confirmDigest(node: NodeEntry, record: RegistrationRecord, digest: Uint8Array): Promise<void> {
    let info;
    try {
      info = await this.transport.call(node.address, "getRecordInfo", { userId: record.user }, this.policy.callTimeoutMs);
    } catch (err) {
      if (err instanceof RecordNotFoundError) throw notYetApplied(node);
      throw err;
    }
    if (info.version < record.version) throw notYetApplied(node);
    if (info.version === record.version && equalBytes(info.recordDigest, digest)) return;
    throw new RecordMismatchError(`node ${node.nodeId} serves version ${info.version} with another digest than the record sent`);
  }

  /** The record again, under `password` and the current nodes; `beforeSend` runs before each submission (abort.ts passChange). */
  private async overwrite(user: string, password: string, opened: Opened, beforeSend?: () => void): Promise<void> {
    const current = opened.record;
    const threshold = current.threshold <= this.descriptor.nodes.length ? current.threshold : this.descriptor.threshold;
    await this.registerRecord(user, password, opened.recovery.backupKey, {
      threshold, guessLimit: current.guessLimit, version: current.version + 1, previousResetPrivateKey: opened.recovery.resetPrivateKey,
    }, beforeSend === undefined ? undefined : () => Promise.resolve(beforeSend()));
  }

  /**
   * DESIGN §5: after a membership change, the record's shares follow the
   * current nodes. Only when the pinned descriptor lists exactly the voters
   * the cluster announces: a stale descriptor must never move shares back to
   * removed nodes. Failures are warnings: the key was recovered.
   */
  private async reshareIfMembershipChanged(user: string, password: string, opened: Opened): Promise<void> {
    const pinned = idList(this.descriptor.nodes.map((n) => n.nodeId));
    if (idList(opened.record.shares.map((s) => s.nodeId)) === pinned) return;
    try {
      const live = await this.announcedNodeIds();
      if (live !== pinned) {
        this.warn("RESHARE_STALE_DESCRIPTOR", `the record's shares (nodes ${idList(opened.record.shares.map((s) => s.nodeId))}) and the pinned descriptor ` +
          `(nodes ${pinned}) differ, and the cluster announces nodes ${live}: update the descriptor (bkv cluster fetch); not re-sharing`);
        return;
      }
      await this.overwrite(user, password, opened);
    } catch (err) {
      this.warn("RESHARE_FAILED", `re-sharing the record to the current nodes failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The node ids of the cluster's current descriptor, as a sorted list, from any node that answers. */
  private announcedNodeIds(): Promise<string> {
    return withRetries("GetClusterDescriptor", this.policy, async () => {
      const res = await this.transport.call(this.leader ?? this.rotate(), "getClusterDescriptor", {}, this.policy.callTimeoutMs);
      return idList((res.descriptor?.nodes ?? []).map((n) => Number(n.nodeId)));
    });
  }

  // --- recovery ---

  /**
   * Recovery steps 1-4 for one password: at most one counted attempt, except
   * after a NEW_ATTEMPT warning. A begin refused as RECORD_CHANGED (nothing
   * counted) re-reads the record and begins once more; an attempt superseded
   * before t evaluations warns NEW_ATTEMPT and begins once more.
   */
  private async open(user: string, password: string, gate?: AbortGate): Promise<Opened> {
    checkUser(user);
    await this.clusterCheck.run(user);
    let changed = false;
    let superseded = false;
    for (;;) {
      const current = await this.readRecord(user);
      try {
        return await this.openAttempt(user, password, current, gate);
      } catch (err) {
        if (err instanceof RecordChangedError && !changed) {
          changed = true;
        } else if (err instanceof AttemptSupersededError && !superseded) {
          superseded = true;
          this.warn("NEW_ATTEMPT", `a concurrent recovery's confirmation superseded this recovery's attempt (${err.serverMessage}); beginning one fresh attempt`);
        } else if (err instanceof AttemptSupersededError) {
          throw new AttemptSupersededError(err.serverMessage, true);
        } else {
          throw err;
        }
      }
    }
  }

  /** One attempt on the record read: BeginRecovery bound to its digest, evaluations, combination, ConfirmRecovery. */
  private async openAttempt(user: string, password: string, current: PublicRecord, gate?: AbortGate): Promise<Opened> {
    const { blinded, state } = await asInputError(() => startRecoveryAsync(password, current.record));
    gate?.pass();
    const begin = await this.begin(user, { requestId: newRequestId(), userId: user, blindedElement: blinded, recordDigest: current.digest });
    const ref = { clusterId: this.descriptor.clusterId, user, version: begin.version, attemptId: begin.attemptId, blinded };
    const t = current.record.threshold;
    const wanted = { need: t, want: t + 1, graceMs: this.options.evaluationGraceMs ?? 300 };
    const collection = await collectEvaluations(this.transport, this.descriptor.nodes, current.record, ref, wanted, this.evaluatePolicy());
    let recovery: Recovery;
    try {
      recovery = await combine(collection, (evaluations) => finishRecovery(state, current.record, evaluations), t, begin.attemptsRemaining);
    } finally {
      collection.stop();
    }
    const attemptsRemaining = await this.confirm(ref, recovery, begin.attemptsRemaining);
    return { record: current.record, recovery, attemptsRemaining };
  }

  /**
   * Recovery step 1, BeginRecovery. A refusal as locked comes from one node
   * and is not believed alone: the record is read again from every node, and
   * the refusal stands only when a quorum serves the record locked.
   * Otherwise the same request (same id: the cluster applies it at most
   * once) goes to the next pinned node; a node refusing so a second time is
   * a RecordMismatchError naming it (a lying leader can deny service, not
   * make the key look destroyed).
   */
  private async begin(user: string, request: RequestOf<"beginRecovery">): Promise<ResponseOf<"beginRecovery">> {
    const refusedBy = new Set<string>();
    for (;;) {
      try {
        return await this.mutate("beginRecovery", request);
      } catch (err) {
        if (!(err instanceof RecordLockedError) || (await this.lockConfirmed(user))) throw err;
        if (refusedBy.has(err.address)) {
          throw new RecordMismatchError(`node ${err.address} refuses BeginRecovery as locked again, but the nodes do not serve the record locked`);
        }
        refusedBy.add(err.address);
        this.leader = undefined;
      }
    }
  }

  /** Whether a quorum of the nodes serves the user's record locked (readRecord's rule). */
  private lockConfirmed(user: string): Promise<boolean> {
    return this.readRecord(user).then(() => false, (err: unknown) => {
      if (err instanceof RecordLockedError) return true;
      throw err;
    });
  }

  /**
   * Recovery step 4. The key is already open: if the cluster stays
   * unavailable, the attempt simply keeps counting (a warning), and the next
   * successful recovery resets the counter.
   */
  private async confirm(ref: { user: string; version: number; attemptId: bigint }, recovery: Recovery, attemptsRemaining: number): Promise<number> {
    const signature = signConfirm(recovery.resetPrivateKey, { clusterId: this.descriptor.clusterId, ...ref }, ref.attemptId);
    try {
      const res = await this.mutate("confirmRecovery", {
        requestId: newRequestId(), userId: ref.user, version: ref.version, attemptId: ref.attemptId, signature,
      });
      return res.attemptsRemaining;
    } catch (err) {
      if (err instanceof RpcError && (err.reason === "ATTEMPT_SUPERSEDED" || err.reason === "ATTEMPT_NOT_FOUND")) {
        // Another device's confirmation settled this attempt first: the key is open and the counter was reset.
        this.warn("CONFIRM_SUPERSEDED", `the recovery was already confirmed by a concurrent recovery (${err.message})`);
        return attemptsRemaining;
      }
      // An honest node never refuses a confirmation as locked (a lock wipes the pending attempts: ATTEMPT_NOT_FOUND),
      // so that answer is one node's; a refused token (or token provider) proposed nothing: the key is open either way.
      if (!confirmNotCommitted(err)) throw err;
      this.warn("CONFIRM_UNAVAILABLE", `the recovery could not be confirmed (${err.message}); this attempt still counts`);
      return attemptsRemaining;
    }
  }

  private warn(code: WarningCode, message: string): void {
    this.options.onWarning?.({ code, message });
  }

  private evaluatePolicy(): RetryPolicy {
    return { ...this.policy, deadlineMs: Math.min(this.policy.deadlineMs, 5_000) };
  }

  /**
   * The record's public part, cross-checked between the nodes that answer
   * (agreeOnRecord), retried while none answers. A state fewer than a quorum
   * of nodes serve is read again: an honest change (an overwrite, a lock)
   * reaches the other nodes within moments. While other nodes serve another
   * state, DISPUTED_READS such reads end in RecordMismatchError naming the
   * nodes; while no other node answers, the reads go on until the retry
   * deadline (UnavailableError). RecordLockedError only for a quorum's lock.
   */
  private readRecord(user: string): Promise<PublicRecord> {
    const quorum = recordQuorum(this.descriptor.nodes.length);
    let disputed = 0;
    return withRetries("GetRecordInfo", this.policy, async () => {
      const verdict = agreeOnRecord(await this.readAnswers(user, quorum), quorum);
      if (verdict.kind === "unconfirmed") {
        if (verdict.others.length > 0 && ++disputed >= DISPUTED_READS) throw new RecordMismatchError(`the nodes disagree on the record: ${verdict.why}`);
        throw new TransientError(verdict.why);
      }
      if (verdict.answer.locked) throw new RecordLockedError("GetRecordInfo", verdict.answer.address);
      return verdict.answer;
    });
  }

  /**
   * GetRecordInfo on every pinned node, until all answered or readGraceMs
   * after `quorum` served the record. Throws when none served it: an error
   * `quorum` nodes answer alike (RecordNotFoundError, RecordLockedError, a
   * refused token, ...); else a TransientError (retried), so that no lone
   * node's refusal ends the read, whatever the others' silence.
   */
  private async readAnswers(user: string, quorum: number): Promise<PublicRecord[]> {
    const { values: answers, errors } = await gatherWithGrace(this.descriptor.nodes.map(async (n) => {
      const info = await this.transport.call(n.address, "getRecordInfo", { userId: user }, this.policy.callTimeoutMs);
      return publicRecordFrom(n.address, info);
    }), this.options.readGraceMs ?? 300, quorum);
    const mismatch = errors.find((e) => e instanceof RecordMismatchError);
    if (mismatch !== undefined) throw mismatch;
    if (answers.length > 0) return answers;
    throw quorumError(errors, quorum) ?? new TransientError(`no ${quorum} nodes answered the record alike: ${errors.map((e) => String((e as Error).message ?? e)).join("; ")}`);
  }

  // --- routing ---

  /** A mutating call, retried with the same request (id) until the deadline. */
  private mutate<M extends MethodName>(method: M, request: RequestOf<M>): Promise<ResponseOf<M>> {
    let address = this.leader ?? this.rotate();
    return withRetries(String(method), this.policy, async () => {
      const res = await this.transport.call(address, method, request, this.policy.callTimeoutMs);
      this.leader = address;
      return res;
    }, {
      onTransient: (err) => {
        const hint = this.pinnedLeaderHint(err, address);
        if (hint !== undefined) {
          address = hint;
          return REDIRECT;
        }
        this.leader = undefined;
        address = this.rotate();
      },
    });
  }

  /**
   * Where a NOT_LEADER from `from` points, among the pinned nodes only: the
   * pinned address of the leader's node id, else its leader_address when
   * that is a pinned node's (other than `from`). A hint anywhere else (an
   * in-cluster name, say) is ignored and the call rotates to the next pinned
   * node: requests and their bearer tokens go to pinned nodes only.
   */
  private pinnedLeaderHint(err: unknown, from: string): string | undefined {
    if (!(err instanceof RpcError) || err.reason !== "NOT_LEADER") return undefined;
    const pinned = (address: string | undefined) => (address !== undefined && address !== from && this.descriptor.nodes.some((n) => n.address === address) ? address : undefined);
    return pinned(this.descriptor.nodes.find((n) => n.nodeId === err.leaderId)?.address) ?? pinned(err.leaderAddress);
  }

  private rotate(): string {
    const nodes = this.descriptor.nodes;
    const node = nodes[this.next++ % nodes.length];
    if (node === undefined) throw new Error("descriptor has no nodes");
    return node.address;
  }
}

/** Combines with the first answers; if that fails while nodes are still answering, waits for all and tries again. */
async function combine(collection: Collection, finish: (e: Collection["evaluations"]) => Recovery, t: number, attemptsRemaining: number): Promise<Recovery> {
  try {
    return finish([...collection.evaluations]);
  } catch (first) {
    const retryable = first instanceof OprfInconsistentEvaluationsError || first instanceof InsufficientEvaluationsError
      || (first instanceof OprfWrongPasswordError && !first.conclusive);
    if (!retryable) throw translate(first, collection, t, attemptsRemaining);
    const before = collection.evaluations.length;
    await collection.settled;
    if (collection.evaluations.length === before) throw translate(first, collection, t, attemptsRemaining);
    try {
      return finish([...collection.evaluations]);
    } catch (second) {
      throw translate(second, collection, t, attemptsRemaining);
    }
  }
}

function translate(err: unknown, collection: Collection, t: number, attemptsRemaining: number): unknown {
  if (err instanceof OprfWrongPasswordError) return new WrongPasswordError(attemptsRemaining, err.conclusive);
  if (err instanceof InsufficientEvaluationsError) return refusalOf(collection) ?? new NotEnoughEvaluationsError(collection.evaluations.length, t, collection.failures);
  if (err instanceof OprfInconsistentEvaluationsError) return new InconsistentEvaluationsError(attemptsRemaining);
  if (err instanceof RecoveryRecordMismatchError) return new RecordMismatchError(err.message);
  return err;
}

function idList(ids: readonly number[]): string {
  return [...ids].sort((a, b) => a - b).join(",");
}

function newRequestId(): Uint8Array {
  return new Uint8Array(randomBytes(REQUEST_ID_BYTES));
}

/** Runs a proto/crypto step whose InvalidArgumentError means a bad caller argument. */
async function asInputError<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new InvalidInputError(err.message);
    throw err;
  }
}

function checkUser(user: string): void {
  try {
    validateUserId(user);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new InvalidInputError(err.message);
    throw err;
  }
}

function notYetApplied(node: NodeEntry): TransientError {
  return new TransientError(`node ${node.nodeId} (${node.address}) has not applied the registration yet`);
}

/** The first of `errors` that `quorum` of them share (same class and reason), unless transient; else undefined. */
function quorumError(errors: readonly unknown[], quorum: number): unknown {
  const kind = (e: unknown) => `${(e as object | null)?.constructor.name ?? ""}:${e instanceof RpcError ? e.reason : ""}`;
  return errors.find((e) => !isTransient(e) && errors.filter((o) => kind(o) === kind(e)).length >= quorum);
}

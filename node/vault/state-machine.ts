// The replicated state machine of DESIGN §5: every node applies the same
// committed entries in the same order and reaches the same state. Pure and
// deterministic: no I/O, no clocks, no randomness.
//
// Contracts:
// - apply/skip are called once per log index, in increasing order (gaps are
//   tolerated: a bootstrap snapshot starts the log after index 1).
// - apply never throws for a bad payload: it returns a refusal and changes
//   nothing but appliedIndex and the request-id table (DESIGN §6.6).
// - attempts of a record only grow, except by a verified confirmation, a
//   verified overwrite or a verified delete (DESIGN §6.4); a record at its
//   guess limit has its shares wiped on the next begin (§6.1).
// - pendingAttempt returns B only for an attempt this state holds.
import { type Command, type Envelope, type NodeAnnouncement, parseEnvelope, unstamp } from "./commands.js";
import { NO_THROTTLE, type ThrottleSchedule } from "./throttle.js";
import { DEFAULT_REQUEST_ID_CAPACITY, RequestTable, fingerprint } from "./dedupe.js";
import { type VaultError, type VaultResult, vaultError } from "./result.js";
import { type Transition, assertStoredRecord, begin, confirm, notPending, register, remaining, remove } from "./records.js";
import { announce } from "./nodes.js";
import { importLegacySnapshot, snapshotFormat } from "./snapshot.js";
import { SNAPSHOT_FORMAT_VERSION, SnapshotImporter, encodeStoreSnapshot } from "./snapshot-stream.js";
import { StoreState } from "./state.js";
import { MemoryStore, type VaultStore } from "./store.js";
import { metaKey } from "./keys.js";
import type { IssuerPolicy } from "./issuers.js";
import { tokenRefusal } from "./jwt.js";
import { VerifiedTokens } from "./token-cache.js";
import { rotateIssuerKeys } from "./rotation.js";
import { VaultInvariantError } from "./errors.js";
import { DigestRing } from "./digest-ring.js";
import {
  BOUND_SHARES_ONLY, BOUND_WRAP_BLOB_VERSION, type RegistrationRecord, UnsupportedVersionError, firstMisboundShare, firstUnboundShare, holdsBoundShare,
} from "../../proto/crypto/index.js";

/** A read-only view: its byte arrays may be shared with the state and must not be mutated. */
export interface RecordView {
  /** Shares are wiped (an empty list) once locked. */
  readonly record: RegistrationRecord;
  readonly attempts: number;
  readonly attemptsRemaining: number;
  readonly locked: boolean;
  readonly pending: readonly { attemptId: number; blinded: Uint8Array }[];
  /** recordDigest of the record as registered. */
  readonly digest: Uint8Array;
  /** Log index of the last confirmation of this version (0: none): attempts below it are superseded. */
  readonly confirmedAt: number;
  /**
   * The attempt id the last confirmation confirmed, as the owner signed it
   * (0: none, or confirmed before bkv kept it): the same wherever in a log
   * that confirmation is applied, unlike confirmedAt.
   */
  readonly confirmedAttempt: number;
}

export interface ApplyOutcome {
  /** The command's request id; null for announcements and undecodable payloads. */
  readonly requestId: Uint8Array | null;
  /**
   * The fingerprint the request id is bound to (null with it): a waiter for
   * this id takes this outcome only if it proposed these bytes, since another
   * payload may be committed under the same id (a rogue leader, or a client
   * reusing an id), and is refused REQUEST_ID_REUSED when its own comes.
   */
  readonly fingerprint: Uint8Array | null;
  readonly result: VaultResult;
  /** The command as parsed from the entry (null: a no-op or an undecodable payload), for observers that describe it (the audit log). */
  readonly command: Command | null;
}

export interface VaultOptions {
  readonly clusterId: string;
  /**
   * The cluster CA certificate (DER) of a new state (the bootstrap): then
   * only announcements certified by it are admitted. A restored state has
   * the CA of its snapshot, whatever this says.
   */
  readonly clusterCa?: Uint8Array;
  /** Request ids remembered by a new state (default 1,000,000). Must be equal on every node; a store keeps its own. */
  readonly requestIdCapacity?: number;
  /** The throttling schedule of a new state (default NO_THROTTLE; the server bootstraps with its configured one). A store keeps its own. */
  readonly throttle?: ThrottleSchedule;
  /**
   * The client-token issuer keys of a new state (the bootstrap; default none:
   * tokens are not verified on apply). A store keeps its own.
   */
  readonly issuers?: IssuerPolicy;
  /**
   * Where the state lives (default: a new MemoryStore). An empty store gets
   * a new state; one that holds a state (a restart) is opened as it is.
   */
  readonly store?: VaultStore;
  /** Applied indexes whose state digest digestAt() remembers (default 65,536; in memory only). */
  readonly digestWindow?: number;
  /**
   * Whether a new state takes bound shares only (default true: every new
   * cluster). False makes a state as a release before bound shares made it,
   * for tests of such states; a store keeps its own.
   */
  readonly boundSharesOnly?: boolean;
}

export class VaultStateMachine {
  private readonly state: StoreState;
  private readonly requests: RequestTable;
  private readonly ring: DigestRing;
  /**
   * Signatures of tokens verified on apply, and by whoever else verifies this
   * cluster's tokens in this process through `verifiedTokens` (the node's
   * client port): speed only, tokenRefusal's verdict is the same without it.
   */
  private readonly tokens = new VerifiedTokens();

  constructor(opts: VaultOptions) {
    const store = opts.store ?? new MemoryStore();
    this.state = store.get(metaKey("cluster")) === undefined
      ? StoreState.create(store, {
        clusterId: opts.clusterId, clusterCa: opts.clusterCa?.slice() ?? null,
        requestIdCapacity: opts.requestIdCapacity ?? DEFAULT_REQUEST_ID_CAPACITY, throttle: opts.throttle ?? NO_THROTTLE,
        issuers: opts.issuers ?? null, boundSharesOnly: opts.boundSharesOnly ?? true,
      })
      : StoreState.open(store, opts.clusterId);
    this.requests = new RequestTable(this.state);
    this.ring = new DigestRing(opts.digestWindow);
    this.ring.record(this.state.appliedIndex, this.state.digest);
  }

  /**
   * Fills `opts.store` (which must be empty; default a new MemoryStore) from
   * a whole snapshot of any format: 4 (snapshot()), or 1-3, which is
   * converted (the upgrade path). Throws CorruptSnapshotError or
   * UnsupportedVersionError.
   */
  static restore(opts: VaultOptions, data: Uint8Array): VaultStateMachine {
    const store = opts.store ?? new MemoryStore();
    if (snapshotFormat(data) === SNAPSHOT_FORMAT_VERSION) {
      const importer = new SnapshotImporter(opts.clusterId, store);
      importer.push(data);
      importer.finish();
    } else {
      importLegacySnapshot(opts.clusterId, data, store);
    }
    return new VaultStateMachine({ clusterId: opts.clusterId, store, ...(opts.digestWindow !== undefined ? { digestWindow: opts.digestWindow } : {}) });
  }

  get appliedIndex(): number {
    return this.state.appliedIndex;
  }

  get clusterId(): string {
    return this.state.clusterId;
  }

  /** The cluster CA (DER) that certifies announcements, or null (a cluster bootstrapped without one: kind 5 only). */
  get clusterCa(): Uint8Array | null {
    return this.state.clusterCa?.slice() ?? null;
  }

  /** The cluster's throttling schedule (fixed at bootstrap). */
  get throttle(): ThrottleSchedule {
    return this.state.throttle;
  }

  /** The client-token issuer keys begin and register entries are verified against; null: none (tokens not verified). */
  get issuers(): IssuerPolicy | null {
    return this.state.issuers;
  }

  /**
   * The cache of verified token signatures that apply uses, for the node's
   * client port to share (token-cache.ts: a hit is checked against the key
   * the caller's policy names, so sharing changes speed only): a leader then
   * checks a new token's signature once, at the port, not again on apply.
   */
  get verifiedTokens(): VerifiedTokens {
    return this.tokens;
  }

  /** The latest leader time applied (unix ms; 0 before the first stamped entry). */
  get leaderTime(): number {
    return this.state.time;
  }

  /** The store the state lives in. */
  get store(): VaultStore {
    return this.state.store;
  }

  /** Record counts for metrics, O(1): kept in the store on every change. */
  stats(): { records: number; locked: number } {
    return { records: this.state.records, locked: this.state.locked };
  }

  /**
   * Applies one committed Normal entry. `voters` are the Raft voters at this
   * index: a record's share holders must be among them.
   */
  apply(index: number, data: Uint8Array, voters: readonly number[]): ApplyOutcome {
    this.checkIndex(index);
    const { time, payload } = unstamp(data);
    if (time !== null && time > this.state.time) this.state.setMetaU64("time", (this.state.time = time));
    const out = payload.length === 0 ? NO_OP : this.applyPayload(index, payload, voters);
    this.advance(index);
    return out;
  }

  /** Advances appliedIndex past an entry that is not a vault command (a conf change). */
  skip(index: number): void {
    this.checkIndex(index);
    this.advance(index);
  }

  /** Writes the applied index with the entry's changes, then the digests; remembers the digest at `index`. */
  private advance(index: number): void {
    this.state.setMetaU64("applied", (this.state.appliedIndex = index));
    this.state.flush();
    this.ring.record(index, this.state.digest);
  }

  private checkIndex(index: number): void {
    if (!Number.isSafeInteger(index) || index <= this.state.appliedIndex) {
      throw new VaultInvariantError(`index ${String(index)} applied after index ${this.state.appliedIndex}: entries must be applied once, in order`);
    }
  }

  private applyPayload(index: number, data: Uint8Array, voters: readonly number[]): ApplyOutcome {
    const env = this.asStateTakesIt(parseEnvelope(data));
    if (env.requestId === null) {
      if (env.command?.kind === "announce") return { requestId: null, fingerprint: null, result: this.applyAnnounce(env.command.node), command: env.command };
      return { requestId: null, fingerprint: null, result: invalid(env.error?.message ?? "undecodable vault command"), command: env.command };
    }
    const print = fingerprint(env.request);
    const prior = this.requests.lookup(env.requestId, print);
    if (prior !== undefined) return { requestId: env.requestId, fingerprint: print, result: prior, command: env.command };
    // Not remembered: the same request with a valid token may still come (a retry with a fresh token).
    const unauthenticated = env.command === null ? null : this.tokenRefusal(env.command);
    if (unauthenticated !== null) return { requestId: env.requestId, fingerprint: print, result: unauthenticated, command: env.command };
    const result = env.command === null ? invalid(env.error?.message ?? "invalid vault command") : this.execute(index, env.command, voters);
    this.requests.remember(env.requestId, print, result, index);
    return { requestId: env.requestId, fingerprint: print, result, command: env.command };
  }

  /**
   * A register or begin in a cluster with issuer keys must carry a valid
   * token for its user at the entry's leader time (jwt.ts); null if it does,
   * or if the cluster verifies no tokens.
   */
  private tokenRefusal(c: Command): VaultError | null {
    const policy = this.state.issuers;
    if (policy === null || (c.kind !== "begin" && c.kind !== "register")) return null;
    const user = c.kind === "begin" ? c.user : c.record.user;
    return tokenRefusal(c.token, { policy, clusterId: this.state.clusterId, user, nowMs: this.state.time, cache: this.tokens });
  }

  /** Runs a validated command with a request id; commits its transition, if any. */
  private execute(index: number, c: Command, voters: readonly number[]): VaultResult {
    const id = this.state.clusterId;
    let user: string;
    let t: Transition;
    switch (c.kind) {
      case "register": {
        user = c.record.user;
        const outsider = c.record.shares.find((s) => !voters.includes(s.nodeId));
        if (outsider !== undefined) return invalid(`share holder ${outsider.nodeId} is not a voter of this cluster`);
        const unbound = this.bindingRefusal(c.record);
        if (unbound !== null) return unbound;
        t = register(id, this.state.getRecord(user), c.record, c.ownerSignature);
        break;
      }
      case "begin":
        user = c.user;
        t = begin(this.state.getRecord(user), user, { attemptId: index, now: this.state.time, throttle: this.state.throttle }, c.blinded, c.recordDigest);
        break;
      case "confirm":
        user = c.user;
        t = confirm(id, this.state.getRecord(user), user, c.version, c.attemptId, c.signature, index);
        break;
      case "delete":
        user = c.user;
        t = remove(id, this.state.getRecord(user), user, c.version, c.signature);
        break;
      case "announce":
        return this.applyAnnounce(c.node);
      case "issuers":
        return this.applyIssuerKeys(c.signedKeys);
      case "bind-shares":
        this.state.requireBoundShares();
        return { ok: true, kind: "bind-shares" };
    }
    this.commit(user, t);
    return t.result;
  }

  /**
   * A registration whose shares are not all bound to it: a bound share made
   * for another record (copied), or, once the cluster takes bound shares
   * only, an unbound one (proto/crypto/share-binding.ts). Null: none.
   */
  private bindingRefusal(record: RegistrationRecord): VaultError | null {
    if (!this.state.boundSharesOnly) return null; // v1 only here (asStateTakesIt), as the release before
    const unbound = firstUnboundShare(record);
    if (unbound !== null) {
      return vaultError("INVALID_ARGUMENT", `the share of node ${unbound} is not bound to its record (wrap blob v1): ${BOUND_SHARES_ONLY}; upgrade the client`);
    }
    const misbound = firstMisboundShare(this.state.clusterId, record);
    if (misbound === null) return null;
    return vaultError("BAD_SIGNATURE", `the share of node ${misbound} was made for another record: its binding signature does not verify for this one`);
  }

  /**
   * A state from before bound shares takes what the release before took: a
   * registration carrying a bound share (wrap blob v2) is, as that
   * release's decoder made it, an undecodable command ("wrapped share has
   * unsupported version 2": no token check, the same outcome remembered
   * under its request id). Members of both releases then hold the same
   * bytes after every entry during a rolling upgrade. Bound shares come
   * with the activation entry (docs/operations.md, "Bound shares"); the
   * client port refuses them before that, with BOUND_SHARES_NOT_ACTIVE.
   */
  private asStateTakesIt(env: Envelope): Envelope {
    if (this.state.boundSharesOnly || env.command?.kind !== "register") return env;
    if (!holdsBoundShare(env.command.record)) return env;
    return { ...env, command: null, error: new UnsupportedVersionError("wrapped share", BOUND_WRAP_BLOB_VERSION) };
  }

  /** Whether registrations take bound shares only (every new cluster; docs/threat-model.md). */
  get boundSharesOnly(): boolean {
    return this.state.boundSharesOnly;
  }

  private commit(user: string, t: Transition): void {
    if (t.next === undefined) return;
    const prev = this.state.getRecord(user);
    if (t.next !== null) {
      assertStoredRecord(t.next);
      if (prev !== undefined && t.next.record.version === prev.record.version && t.next.attempts < prev.attempts && !(t.result.ok && t.result.kind === "confirm")) {
        throw new VaultInvariantError(`attempts of ${JSON.stringify(user)} would decrease without a confirmation`);
      }
    }
    this.state.setRecord(user, prev, t.next, t.confirmedAttempt);
  }

  /** A new key set for one issuer, signed by a key of its current set (rotation.ts). */
  private applyIssuerKeys(signedKeys: string): VaultResult {
    const { result, next } = rotateIssuerKeys(this.state.issuers, signedKeys, this.state.clusterId, this.state.time);
    if (next !== undefined) this.state.setIssuers(next);
    return result;
  }

  private applyAnnounce(node: NodeAnnouncement): VaultResult {
    const { result, next } = announce(this.state.clusterId, this.state.clusterCa, this.state.getNode(node.nodeId), node);
    if (next !== undefined) this.state.setNode(next);
    return result;
  }

  getRecord(user: string): RecordView | undefined {
    const s = this.state.getRecord(user);
    if (s === undefined) return undefined;
    return {
      record: s.record,
      attempts: s.attempts,
      attemptsRemaining: remaining(s),
      locked: s.locked,
      pending: s.pending.map((p) => ({ attemptId: p.attemptId, blinded: p.blinded.slice() })),
      digest: s.digest.slice(),
      confirmedAt: s.confirmedAt,
      confirmedAttempt: this.state.confirmedAttempt(user),
    };
  }

  /** Why an attempt of an existing record is not pending (superseded or not found); undefined if it is pending. */
  whyNotPending(user: string, attemptId: number): VaultError | undefined {
    const s = this.state.getRecord(user);
    if (s === undefined) return vaultError("RECORD_NOT_FOUND", `user ${JSON.stringify(user)} has no record`);
    return s.pending.some((p) => p.attemptId === attemptId) ? undefined : notPending(s, attemptId);
  }

  /** B of a pending attempt that this applied state holds (never for a locked record). */
  pendingAttempt(user: string, attemptId: number): { blinded: Uint8Array; version: number } | undefined {
    const s = this.state.getRecord(user);
    const p = s?.pending.find((a) => a.attemptId === attemptId);
    if (s === undefined || p === undefined || s.locked) return undefined;
    return { blinded: p.blinded.slice(), version: s.record.version };
  }

  /** Announced node descriptors, ascending by node id. */
  nodes(): readonly NodeAnnouncement[] {
    return this.state.nodes();
  }

  /** Number of request ids remembered (at most the capacity). */
  get rememberedRequests(): number {
    return this.requests.size;
  }

  /** The whole format-4 snapshot (snapshot-stream.ts) of the store as it is now: for small states; a disk store streams a view. */
  snapshot(): Uint8Array {
    return encodeStoreSnapshot(this.state.clusterId, this.state.store);
  }

  /**
   * The state digest (digest.ts), O(1): over every pair of the store (an
   * LtHash kept on every write, and the counters by value); equal on every
   * node at the same applied index however it got there.
   */
  digest(): Uint8Array {
    return this.state.digest;
  }

  /**
   * The state digest right after applied index `index`, if this state
   * applied (or opened at) it within the last `digestWindow` indexes since
   * it was opened; what a node vouches for (GetStateDigest).
   */
  digestAt(index: number): Uint8Array | undefined {
    return this.ring.digestAt(index);
  }
}

const NO_OP: ApplyOutcome = Object.freeze({
  requestId: null,
  fingerprint: null,
  command: null,
  result: Object.freeze(vaultError("INVALID_ARGUMENT", "empty entry (a leader's no-op): nothing to apply")),
});

function invalid(message: string): VaultResult {
  return vaultError("INVALID_ARGUMENT", message);
}

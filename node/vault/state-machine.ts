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
import { sha256 } from "@noble/hashes/sha2.js";
import { validateCaCertificate, validateClusterId } from "../../proto/crypto/index.js";
import { type Command, type NodeAnnouncement, parseEnvelope } from "./commands.js";
import { RequestTable, fingerprint } from "./dedupe.js";
import { type VaultError, type VaultResult, vaultError } from "./result.js";
import { type Transition, assertStoredRecord, begin, confirm, notPending, register, remaining, remove } from "./records.js";
import { announce } from "./nodes.js";
import { type VaultState, decodeSnapshot, encodeSnapshot } from "./snapshot.js";
import { VaultInvariantError } from "./errors.js";
import { stateDigest } from "./digest.js";
import type { RegistrationRecord } from "../../proto/crypto/index.js";

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
}

export interface ApplyOutcome {
  /** The command's request id; null for announcements and undecodable payloads. */
  readonly requestId: Uint8Array | null;
  readonly result: VaultResult;
}

export interface VaultOptions {
  readonly clusterId: string;
  /**
   * The cluster CA certificate (DER) of a new state (the bootstrap): then
   * only announcements certified by it are admitted. A restored state has
   * the CA of its snapshot, whatever this says.
   */
  readonly clusterCa?: Uint8Array;
  /** Request ids remembered (default 100,000). Must be equal on every node; a snapshot carries its own. */
  readonly requestIdCapacity?: number;
}

export class VaultStateMachine {
  private state: VaultState;
  /** Records with locked set; kept equal to a scan of state.records by commit and restore. */
  private lockedRecords = 0;
  /** digest() at an applied index: the state changes only with appliedIndex. */
  private digestCache: { readonly index: number; readonly digest: Uint8Array } | null = null;

  constructor(opts: VaultOptions) {
    validateClusterId(opts.clusterId);
    if (opts.clusterCa !== undefined) validateCaCertificate(opts.clusterCa);
    const clusterCa = opts.clusterCa?.slice() ?? null;
    this.state = { clusterId: opts.clusterId, clusterCa, appliedIndex: 0, records: new Map(), nodes: new Map(), requests: new RequestTable(opts.requestIdCapacity) };
  }

  /** Rebuilds a state machine from snapshot(); throws CorruptSnapshotError / UnsupportedVersionError. */
  static restore(opts: VaultOptions, data: Uint8Array): VaultStateMachine {
    const s = decodeSnapshot(opts.clusterId, data);
    const sm = new VaultStateMachine({ clusterId: opts.clusterId, requestIdCapacity: s.requests.capacity });
    sm.state = s;
    for (const r of s.records.values()) if (r.locked) sm.lockedRecords++;
    return sm;
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

  /** Record counts for metrics, O(1): maintained on every change and counted once on restore. */
  stats(): { records: number; locked: number } {
    return { records: this.state.records.size, locked: this.lockedRecords };
  }

  /**
   * Applies one committed Normal entry. `voters` are the Raft voters at this
   * index: a record's share holders must be among them.
   */
  apply(index: number, data: Uint8Array, voters: readonly number[]): ApplyOutcome {
    this.checkIndex(index);
    const out = data.length === 0 ? NO_OP : this.applyPayload(index, data, voters);
    this.state.appliedIndex = index;
    return out;
  }

  /** Advances appliedIndex past an entry that is not a vault command (a conf change). */
  skip(index: number): void {
    this.checkIndex(index);
    this.state.appliedIndex = index;
  }

  private checkIndex(index: number): void {
    if (!Number.isSafeInteger(index) || index <= this.state.appliedIndex) {
      throw new VaultInvariantError(`index ${String(index)} applied after index ${this.state.appliedIndex}: entries must be applied once, in order`);
    }
  }

  private applyPayload(index: number, data: Uint8Array, voters: readonly number[]): ApplyOutcome {
    const env = parseEnvelope(data);
    if (env.requestId === null) {
      if (env.command?.kind === "announce") return { requestId: null, result: this.applyAnnounce(env.command.node) };
      return { requestId: null, result: invalid(env.error?.message ?? "undecodable vault command") };
    }
    const print = fingerprint(data);
    const prior = this.state.requests.lookup(env.requestId, print);
    if (prior !== undefined) return { requestId: env.requestId, result: prior };
    const result = env.command === null ? invalid(env.error?.message ?? "invalid vault command") : this.execute(index, env.command, voters);
    this.state.requests.remember(env.requestId, print, result);
    return { requestId: env.requestId, result };
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
        t = register(id, this.state.records.get(user), c.record, c.ownerSignature);
        break;
      }
      case "begin":
        user = c.user;
        t = begin(this.state.records.get(user), user, index, c.blinded, c.recordDigest);
        break;
      case "confirm":
        user = c.user;
        t = confirm(id, this.state.records.get(user), user, c.version, c.attemptId, c.signature, index);
        break;
      case "delete":
        user = c.user;
        t = remove(id, this.state.records.get(user), user, c.version, c.signature);
        break;
      case "announce":
        return this.applyAnnounce(c.node);
    }
    this.commit(user, t);
    return t.result;
  }

  private commit(user: string, t: Transition): void {
    if (t.next === undefined) return;
    const prev = this.state.records.get(user);
    if (t.next === null) {
      this.state.records.delete(user);
      if (prev?.locked === true) this.lockedRecords--;
      return;
    }
    assertStoredRecord(t.next);
    if (prev !== undefined && t.next.record.version === prev.record.version && t.next.attempts < prev.attempts && !(t.result.ok && t.result.kind === "confirm")) {
      throw new VaultInvariantError(`attempts of ${JSON.stringify(user)} would decrease without a confirmation`);
    }
    this.state.records.set(user, t.next);
    this.lockedRecords += (t.next.locked ? 1 : 0) - (prev?.locked === true ? 1 : 0);
  }

  private applyAnnounce(node: NodeAnnouncement): VaultResult {
    const { result, next } = announce(this.state.clusterId, this.state.clusterCa, this.state.nodes.get(node.nodeId), node);
    if (next !== undefined) this.state.nodes.set(next.nodeId, next);
    return result;
  }

  getRecord(user: string): RecordView | undefined {
    const s = this.state.records.get(user);
    if (s === undefined) return undefined;
    return {
      record: s.record,
      attempts: s.attempts,
      attemptsRemaining: remaining(s),
      locked: s.locked,
      pending: s.pending.map((p) => ({ attemptId: p.attemptId, blinded: p.blinded.slice() })),
      digest: s.digest.slice(),
      confirmedAt: s.confirmedAt,
    };
  }

  /** Why an attempt of an existing record is not pending (superseded or not found); undefined if it is pending. */
  whyNotPending(user: string, attemptId: number): VaultError | undefined {
    const s = this.state.records.get(user);
    if (s === undefined) return vaultError("RECORD_NOT_FOUND", `user ${JSON.stringify(user)} has no record`);
    return s.pending.some((p) => p.attemptId === attemptId) ? undefined : notPending(s, attemptId);
  }

  /** B of a pending attempt that this applied state holds (never for a locked record). */
  pendingAttempt(user: string, attemptId: number): { blinded: Uint8Array; version: number } | undefined {
    const s = this.state.records.get(user);
    const p = s?.pending.find((a) => a.attemptId === attemptId);
    if (s === undefined || p === undefined || s.locked) return undefined;
    return { blinded: p.blinded.slice(), version: s.record.version };
  }

  /** Announced node descriptors, ascending by node id. */
  nodes(): readonly NodeAnnouncement[] {
    return [...this.state.nodes.values()].sort((a, b) => a.nodeId - b.nodeId);
  }

  /** Number of request ids remembered (at most the capacity). */
  get rememberedRequests(): number {
    return this.state.requests.size;
  }

  snapshot(): Uint8Array {
    return encodeSnapshot(this.state);
  }

  /**
   * The state digest (digest.ts): SHA-256 of the whole replicated state, equal
   * to the checksum that ends snapshot(), so equal on every node at the same
   * applied index however it got there. O(state), computed on demand (cached
   * until the next apply or skip); never call it per entry.
   */
  digest(): Uint8Array {
    const index = this.state.appliedIndex;
    if (this.digestCache?.index !== index) this.digestCache = { index, digest: stateDigest(this.state) };
    return this.digestCache.digest.slice();
  }

  /**
   * SHA-256 of the records and node descriptors only (not the applied index,
   * not the request-id table): unchanged by a refused command.
   */
  contentDigest(): Uint8Array {
    const s = this.state;
    return sha256(encodeSnapshot({ ...s, appliedIndex: 0, requests: new RequestTable(s.requests.capacity) }));
  }
}

const NO_OP: ApplyOutcome = Object.freeze({
  requestId: null,
  result: Object.freeze(vaultError("INVALID_ARGUMENT", "empty entry (a leader's no-op): nothing to apply")),
});

function invalid(message: string): VaultResult {
  return vaultError("INVALID_ARGUMENT", message);
}

// The node's local snapshots (docs/storage.md, "Snapshot transfer"): when one
// is due, taking it at the store's durable applied index with a read view of
// the store pinned for followers, compacting the log behind it, and the view
// pins: released when idle (store-snapshots.ts PinnedViews), pinned again when
// Raft wants to send one (withPinnedSnapshots), and a fresh snapshot owed once
// a stale one was sent (peers vouch for recent indexes only: snapshot-attest.ts).
//
// Invariant: `index` is the index of the newest Raft snapshot in storage; a
// view is pinned only at an index the store was exactly at.
import { type ConfState, type Message, MessageType, type Snapshot, type Storage } from "../raft/index.js";
import type { DiskStorage, VaultFiles } from "../storage/index.js";
import type { SnapshotStream } from "../transport/index.js";
import { decodeServerSnapshot, encodeServerSnapshot } from "./snapshot-data.js";
import { PinnedViews, withPinnedSnapshots } from "./store-snapshots.js";
import type { Logger } from "./log.js";

export interface LocalSnapshotsContext {
  readonly clusterId: string;
  readonly storage: DiskStorage;
  readonly files: VaultFiles;
  readonly log: Logger;
  readonly snapshotInterval: number;
  readonly snapshotRetention: number;
  /** The vault's applied index and state digest now. */
  applied(): number;
  digest(): Uint8Array;
  peers(): ReadonlyMap<number, string>;
  confState(): ConfState;
  /** Resolves once everything applied so far is durable in the store. */
  committed(): Promise<void>;
  /** Asks the loop for a drain (it calls isDue/take there). */
  schedule(): void;
}

export class LocalSnapshots {
  /** Index of the newest Raft snapshot in storage. */
  index: number;
  private readonly views: PinnedViews;
  /** No pinned view matches the Raft snapshot (a restart, an upgrade, a stale send): take one at the first chance. */
  private owed: boolean;
  /** Raft wants to send a snapshot whose store view was released: pin one at the next chance. */
  private pinWanted = false;
  /** The next snapshot compacts the log no further than this (noteSent). */
  private keepLogAfter = Infinity;

  constructor(private readonly ctx: LocalSnapshotsContext) {
    const snap = ctx.storage.snapshot();
    this.index = snap.metadata.index;
    this.views = new PinnedViews(ctx.clusterId, ctx.snapshotRetention);
    const data = snap.data.length > 0 ? decodeServerSnapshot(snap.data) : null;
    const pinnable = data?.store !== undefined && data.store.appliedIndex === ctx.applied();
    if (pinnable) this.views.pin(snap.metadata.index, snap.metadata.term, ctx.files.store.view());
    this.owed = !pinnable && snap.metadata.index > 0;
  }

  /** The storage Raft reads: a snapshot whose view is not pinned is temporarily unavailable (and a pin is asked for). */
  raftStorage(): Storage {
    return withPinnedSnapshots(this.ctx.storage, this.views, () => {
      this.pinWanted = true;
      this.ctx.schedule();
    });
  }

  /**
   * A snapshot sent while entries were applied since is replaced at the next
   * chance, so that the leader's next try carries a recent one; the follower
   * may still install the stale one, so the entries after it are kept.
   */
  noteSent(messages: readonly Message[]): void {
    for (const m of messages) {
      const index = m.snapshot?.metadata.index ?? Infinity;
      if (m.type !== MessageType.Snap || index >= this.ctx.applied()) continue;
      this.owed = true;
      this.keepLogAfter = Math.min(this.keepLogAfter, index);
    }
  }

  isDue(applied: number): boolean {
    return applied - this.index >= this.ctx.snapshotInterval || (this.owed && applied > this.index) || this.pinWanted;
  }

  /**
   * A snapshot at `applied`, the store's applied index (the caller applies
   * nothing while this awaits the last commit, so it is durable then): the
   * Raft snapshot names the state, and a read view of the store at it is pinned.
   */
  async take(applied: number): Promise<Snapshot> {
    this.pinWanted = false;
    await this.ctx.committed();
    if (applied <= this.index) return this.pinLatest(applied);
    const view = this.ctx.files.store.view();
    let snap: Snapshot;
    try {
      const data = encodeServerSnapshot({ peers: this.ctx.peers(), store: { appliedIndex: applied, digest: this.ctx.digest() } });
      snap = await this.ctx.storage.createSnapshot(applied, this.ctx.confState(), data);
    } catch (err) {
      view.release();
      throw err;
    }
    this.views.pin(applied, snap.metadata.term, view);
    this.owed = false;
    // Keep a tail of entries (as etcd's SnapshotCatchUpEntries) so that a
    // follower slightly behind catches up from the log, not a full snapshot,
    // and the entries after a snapshot being downloaded: the follower that
    // installs it goes on from the log instead of starting over.
    const keep = Math.min(applied - this.catchUpEntries(), this.keepLogAfter, this.views.oldestRead() ?? Infinity);
    this.ctx.storage.compact(Math.max(1, keep));
    this.keepLogAfter = Infinity;
    this.index = applied;
    this.ctx.log.info("took snapshot", { index: applied });
    return snap;
  }

  /** The node moved onto an installed snapshot's state (`hasStore`: the store is at its index). */
  restored(snap: Snapshot, hasStore: boolean): void {
    const { index, term } = snap.metadata;
    this.views.releaseAll();
    if (hasStore) this.views.pin(index, term, this.ctx.files.store.view());
    this.owed = !hasStore;
    this.index = index;
  }

  /** The store state of snapshot (index, term) for a follower's download, or null when its view is not pinned. */
  open(index: number, term: number): SnapshotStream | null {
    return this.views.open(index, term);
  }

  /** `snap` self-contained, or null when its view is not pinned (PinnedViews.selfContained). */
  selfContained(snap: Snapshot): Generator<Uint8Array> | null {
    return this.views.selfContained(snap);
  }

  /** Releases the views no transfer read for a while (called on every tick). */
  sweep(): void {
    this.views.sweep();
  }

  releaseAll(): void {
    this.views.releaseAll();
  }

  /** The latest snapshot, its view pinned again if it was released and the store still holds its state. */
  private pinLatest(applied: number): Snapshot {
    const snap = this.ctx.storage.snapshot();
    const { index, term } = snap.metadata;
    if (!this.views.sendable(snap) && applied === index) this.views.pin(index, term, this.ctx.files.store.view());
    return snap;
  }

  private catchUpEntries(): number {
    return Math.min(5000, Math.floor(this.ctx.snapshotInterval / 2));
  }
}

// Opens the vault state on a start (docs/storage.md, "Restart"): the store as
// the last run left it, reconciled with the Raft snapshot on disk.
// - A snapshot Raft saved whose staged store was not swapped in yet (a crash
//   between the two): the swap is finished now. Other staged stores go.
// - An empty store and a snapshot with the vault state inline (format 1: the
//   bootstrap, or a data dir of the release before the store): the state is
//   converted into the store (the upgrade path) and committed.
// - Otherwise the store is opened as it is (a store of an older layout is
//   upgraded and committed); it must hold at least the state
//   the snapshot names, since the log before that is gone.
// Raft then replays only the entries after the snapshot; the loop skips the
// vault for those the store already holds.
import type { Snapshot } from "../raft/index.js";
import { StorageError, type VaultFiles } from "../storage/index.js";
import { ALL_KEYS, VaultStateMachine, type VaultStore, firstPair } from "../vault/index.js";
import { decodeServerSnapshot } from "./snapshot-data.js";
import type { Logger } from "./log.js";

export async function openVault(files: VaultFiles, snap: Snapshot, clusterId: string, log: Logger): Promise<VaultStateMachine> {
  const data = snap.data.length > 0 ? decodeServerSnapshot(snap.data) : null;
  await finishSwap(files, snap, clusterId, log);
  const store = files.store;
  if (isEmpty(store)) {
    if (data?.store !== undefined) {
      throw new StorageError(`the Raft snapshot at index ${snap.metadata.index} names a store state but the vault store in ${files.dir} is empty: remove the data dir and add the node again`);
    }
    const sm = data !== null && data.vault.length > 0
      ? VaultStateMachine.restore({ clusterId, store }, data.vault)
      : new VaultStateMachine({ clusterId, store });
    await store.commit();
    if (data !== null) log.info("vault state written into the store from the Raft snapshot", { index: snap.metadata.index, applied: sm.appliedIndex });
    return sm;
  }
  const sm = new VaultStateMachine({ clusterId, store });
  await store.commit(); // an upgrade of the store's layout on open (node/vault/state.ts) writes its digest states
  if (data?.store !== undefined && sm.appliedIndex < data.store.appliedIndex) {
    throw new StorageError(`the vault store is at index ${sm.appliedIndex}, behind the Raft snapshot's ${data.store.appliedIndex}: the entries between are compacted away; remove the data dir and add the node again`);
  }
  log.info("vault store opened", { applied: sm.appliedIndex, snapshot: snap.metadata.index });
  return sm;
}

/** Promotes the staged store of the Raft snapshot if the current store is behind it; discards every other staged store. */
async function finishSwap(files: VaultFiles, snap: Snapshot, clusterId: string, log: Logger): Promise<void> {
  const { index, term } = snap.metadata;
  const staged = files.stagedAt(index);
  if (staged !== undefined && staged.term === term && appliedOf(files.store, clusterId) < staged.appliedIndex) {
    await files.promote(index);
    await files.closeRetired();
    log.warn("finished swapping in the store of an installed snapshot (the node stopped between saving the snapshot and the swap)", { index });
  }
  for (const i of files.stagedIndices()) await files.discard(i);
}

function isEmpty(store: VaultStore): boolean {
  return firstPair(store, ...ALL_KEYS) === undefined;
}

function appliedOf(store: VaultStore, clusterId: string): number {
  return isEmpty(store) ? 0 : new VaultStateMachine({ clusterId, store }).appliedIndex;
}

// The attested install (docs/threat-model.md, "Closed: a forged
// InstallSnapshot resets a counter"): a follower installs a snapshot's vault
// state — applied index i, state digest D that it recomputed itself from the
// pairs it imported — only after `threshold` distinct nodes other than
// itself answer that THEIR digest right after applying i is D
// (RaftService.GetStateDigest over mTLS: the certificate names the node, so
// the answer needs no signature). At most t−1 nodes collude, so one of them
// is honest and the state is one the cluster reached. The sender may vouch.
//
// Refused (SnapshotRefusedError, counted by reason, the old state kept):
// - "index": the state is not at the snapshot's index (honest snapshots are
//   taken at the applied index; an older state under a newer index would
//   skip entries);
// - "disagreement": a node reports another digest at i (logged as an error
//   naming the nodes: evidence of a rogue, or of divergence);
// - "rollback": the state would take this node's vault back (a counter of
//   the same registration lower, a lock lifted, the state's time earlier:
//   node/vault rollback.ts; logged as an error): vouching proves an honest
//   node reached the state, not that it extends this node's own history,
//   which a rogue leader can fork (docs/threat-model.md);
// - "unattested": fewer than `threshold` nodes vouch (not applied i yet —
//   a silent node is asked again a few times within about 2 s —, evicted
//   it, down); the leader sends a newer snapshot later (raft-loop.ts takes a
//   fresh one when it sends a stale one).
// The bootstrap's new state (applied index 0, at snapshot index 1) is asked
// for like any other: it holds the cluster's meta (CA, issuer keys, throttle
// schedule), which a rogue leader could otherwise set for a joining node.
// Founders remember their digest at 0 until they restart; when nobody does,
// the leader's next snapshot is a fresh one (local-snapshots.ts: a stale send
// makes one owed).
import { setTimeout as sleep } from "node:timers/promises";
import type { NodeId } from "../raft/index.js";
import { equalBytes } from "../../proto/crypto/index.js";
import type { Logger } from "./log.js";

export type RefusalReason = "index" | "rollback" | "disagreement" | "unattested";

export class SnapshotRefusedError extends Error {
  override readonly name = "SnapshotRefusedError";
  constructor(readonly reason: RefusalReason, message: string) {
    super(message);
  }
}

export interface AttestOptions {
  readonly selfId: NodeId;
  /** Vouching nodes needed besides this one (the cluster's threshold t). */
  readonly threshold: number;
  /** Node `id`'s digest at applied index `index`, null when it does not hold it; throws when unreachable. */
  ask(id: NodeId, index: number): Promise<Uint8Array | null>;
  readonly log: Logger;
  /** Counts a refusal (metrics). */
  refused?(reason: RefusalReason): void;
  /**
   * Pauses before asking a silent node again (it may apply the index a moment
   * later than the sender); default 100, 250, 500, 1000 ms.
   */
  readonly retryDelaysMs?: readonly number[];
}

/** What is about to be installed. */
export interface Candidate {
  /** The node that sent the snapshot message. */
  readonly from: NodeId;
  /** The Raft snapshot's index. */
  readonly index: number;
  /** The imported state's applied index and digest (recomputed here from its pairs). */
  readonly appliedIndex: number;
  readonly digest: Uint8Array;
  /** The nodes to ask (this node is skipped). */
  readonly members: readonly NodeId[];
  /** How installing the state would take this node's vault back, or null (node/vault rollbackFrom); absent: not checked. */
  readonly rollback?: () => Promise<string | null>;
}

/** Resolves when the candidate is attested; throws SnapshotRefusedError otherwise (logged and counted). */
export async function attestSnapshot(o: AttestOptions, c: Candidate): Promise<void> {
  try {
    await check(o, c);
  } catch (err) {
    if (err instanceof SnapshotRefusedError) o.refused?.(err.reason);
    throw err;
  }
}

async function check(o: AttestOptions, c: Candidate): Promise<void> {
  const early = judge(c, o.threshold, null);
  if (early === "admit") return;
  if (early instanceof SnapshotRefusedError) {
    o.log.warn("snapshot refused: its state is not at its index", { from: c.from, index: c.index, applied: c.appliedIndex });
    throw early;
  }
  const back = (await c.rollback?.()) ?? null;
  if (back !== null) {
    o.log.error("snapshot refused: it would take this node's vault back (a rogue leader, or divergence)", { from: c.from, index: c.index, why: back });
    throw new SnapshotRefusedError("rollback", `the state at index ${c.index} would take this node's vault back: ${back}`);
  }
  const answers = await askAll(o, c);
  const verdict = judge(c, o.threshold, answers);
  const fields = { from: c.from, index: c.index, ...tally(c, answers), needed: o.threshold };
  if (verdict instanceof SnapshotRefusedError) {
    if (verdict.reason === "disagreement") o.log.error("snapshot refused: nodes report another state digest at its index (a rogue node, or divergence)", fields);
    else o.log.warn("snapshot refused: too few nodes vouch for its state; waiting for a newer snapshot message", fields);
    throw verdict;
  }
  o.log.info("snapshot attested", fields);
}

export interface Answer {
  readonly id: NodeId;
  /** The node's digest at the candidate's applied index; null: it does not hold it (or did not answer). */
  readonly digest: Uint8Array | null;
}

/**
 * The rule, pure (the simulation applies it too): "admit" or a
 * SnapshotRefusedError; with `answers` null, whether asking is needed at
 * all ("ask"). Answers of this node itself do not count.
 */
export function judge(c: Candidate, threshold: number, answers: readonly Answer[] | null, selfId?: NodeId): "admit" | "ask" | SnapshotRefusedError {
  if (c.appliedIndex !== c.index && !isBootstrapState(c)) return new SnapshotRefusedError("index", `the snapshot at index ${c.index} holds a state applied to ${c.appliedIndex}`);
  if (answers === null) return "ask";
  const { vouching, disagreeing } = tally(c, answers.filter((a) => a.id !== selfId));
  if (disagreeing.length > 0) return new SnapshotRefusedError("disagreement", `nodes ${disagreeing.join(", ")} report another state digest at index ${c.index}`);
  if (vouching.length < threshold) return new SnapshotRefusedError("unattested", `${vouching.length} of the ${threshold} nodes needed vouch for the state at index ${c.index}`);
  return "admit";
}

/** The bootstrap snapshot (index 1) holds the new state, applied to 0: the one state not at its snapshot's index. */
function isBootstrapState(c: Candidate): boolean {
  return c.appliedIndex === 0 && c.index === 1;
}

/** Who vouches, who disagrees, who is silent (distinct node ids). */
function tally(c: Candidate, answers: readonly Answer[]): { vouching: NodeId[]; disagreeing: NodeId[]; silent: NodeId[] } {
  const ids = (keep: (a: Answer) => boolean) => [...new Set(answers.filter(keep).map((a) => a.id))];
  return {
    vouching: ids((a) => a.digest !== null && equalBytes(a.digest, c.digest)),
    disagreeing: ids((a) => a.digest !== null && !equalBytes(a.digest, c.digest)),
    silent: ids((a) => a.digest === null),
  };
}

const RETRY_DELAYS_MS = [100, 250, 500, 1000];

/** Every other member's answer (null: does not hold the index, or unreachable, after the retries). */
async function askAll(o: AttestOptions, c: Candidate): Promise<Answer[]> {
  const ids = [...new Set(c.members)].filter((id) => id !== o.selfId).sort((a, b) => a - b);
  const delays = o.retryDelaysMs ?? RETRY_DELAYS_MS;
  return Promise.all(ids.map(async (id) => {
    let digest = await o.ask(id, c.appliedIndex).catch(() => null);
    for (let i = 0; digest === null && i < delays.length; i++) {
      await sleep(delays[i] ?? 0);
      digest = await o.ask(id, c.appliedIndex).catch(() => null);
    }
    return { id, digest };
  }));
}

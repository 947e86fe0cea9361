// The guess bound under a Byzantine leader (DESIGN §5, docs/threat-model.md).
//
// Honest followers are the real pieces: a RawNode over a MemoryStorage, and
// the vault state machine applying what Raft commits (a raw vault snapshot
// is the Raft snapshot's data). The rogue is node `n`: it holds its own
// share (it evaluates anything with its own token) and plays leader by hand,
// feeding each honest follower its own log suffix (equivocation) and the
// commit index that makes the follower apply it. The attacker (the rogue's
// accomplice client) calls Evaluate on an honest node exactly as
// vault-service.ts answers it: only for a pending attempt of that node's own
// applied state, and only while its evaluation ledger admits it (at most the
// record's guess limit per epoch). A guess counts when `t` evaluations of one blinded element
// were obtained: the rogue's `f` and `t − f` honest ones.
//
// Every random choice (blinded elements, the order of honest nodes, the
// order in which a guess visits its nodes) comes from the seed.
//
// A follower installs a snapshot only as node/server does
// (snapshot-attest.ts, the same `judge`): it restores the state, then asks
// every other node for its digest at that applied index (synchronously, no
// timers: the honest nodes answer from their digest rings, the rogue vouches
// for its own forgery) and needs `t` of them to match.
import {
  type Entry, EntryType, type Message, MessageType, MemoryStorage, type NodeId, RawNode, bootstrapSnapshot, message,
} from "../../node/raft/index.js";
import { VaultStateMachine, encodeCommand, rollbackFrom } from "../../node/vault/index.js";
import { judge } from "../../node/server/snapshot-attest.js";
import { epochOf } from "../../node/storage/evaluation-ledger.js";
import { type Registration, equalBytes } from "../../proto/crypto/index.js";
import { CLUSTER, beginCmd, blindedPoint, makeNode, register, registerCmd, runToEnd } from "../../testkit/vault.js";
import { Prng } from "./prng.js";

/** How the rogue leader spends the honest nodes' counters. */
export type Strategy =
  /** The documented attack: disjoint groups of `t − f` honest nodes, each authorizing `L` attempts. */
  | "disjoint"
  /** Overlapping groups: guess j goes to `t − f` honest nodes taken cyclically, balancing every counter. */
  | "cyclic"
  /** cyclic, then a forged InstallSnapshot resetting each honest node's counter, `rounds` times. */
  | "forged-snapshot"
  /**
   * Attempts counted on one group of `t − f` honest nodes only, while the
   * others get a history of their own (fillers, no attempt); then every spent
   * node is sent the state of the others, which `t` nodes truly hold (the
   * others and the rogue vouch), `rounds` times.
   */
  | "other-history"
  /**
   * other-history forked before the registration: only the spent group
   * holds the record, so the others' state lacks it (the rollback check has
   * nothing to compare); after each install the rogue appends the same
   * registration entry again and spends the fresh counter. The evaluation
   * ledger (HonestFollower.evaluate, as node/storage/evaluation-ledger.ts)
   * refuses the second round.
   */
  | "replay-registration";

export interface BoundCase {
  readonly t: number;
  readonly n: number;
  /** Rogue nodes (this simulation plays f = 1: the leader). */
  readonly f: number;
  readonly guessLimit: number;
}

export interface BoundMeasure extends BoundCase {
  readonly strategy: Strategy;
  readonly seed: number;
  /** Guesses the attacker obtained: blinded elements with `t` evaluations. */
  readonly measured: number;
  /** docs/threat-model.md before this measurement: L · floor((n−f)/(t−f)). */
  readonly documented: number;
  /** The counting bound: each honest node evaluates at most L attempts, a guess needs t − f of them. */
  readonly counting: number;
  /** Evaluate calls an honest node refused (its counter was spent: the begin locked the record or found it locked). */
  readonly refusedEvaluations: number;
  /** Snapshot messages the honest nodes refused (not attested). */
  readonly refusedSnapshots: number;
}

export const USER = "victim";
const TERM = 2;
const FORGED_ROUNDS = 2;
/** A user the fillers of "other-history" name; never registered, so each is refused and counts nothing. */
const NOBODY = "nobody";

export function documentedBound(c: BoundCase): number {
  return c.guessLimit * Math.floor((c.n - c.f) / (c.t - c.f));
}

export function countingBound(c: BoundCase): number {
  return Math.floor((c.guessLimit * (c.n - c.f)) / (c.t - c.f));
}

/** Who answers GetStateDigest in the simulation: node id → its digest at an index (null: does not hold it). */
export type Directory = ReadonlyMap<NodeId, (index: number) => Uint8Array | null>;

/** One honest follower: RawNode + MemoryStorage + the vault, with a synchronous Ready loop. */
export class HonestFollower {
  readonly storage = new MemoryStorage();
  readonly raw: RawNode;
  vault = new VaultStateMachine({ clusterId: CLUSTER });
  /** Snapshot messages refused before Raft saw them (not attested). */
  refusedSnapshots = 0;
  /** The nodes this one asks before it installs a snapshot (set by whoever builds the cluster). */
  directory: Directory = new Map();
  /** The evaluations this node released: attempts per record epoch (its evaluation ledger). */
  private readonly ledger = new Map<string, Set<string>>();
  /** The newest epoch's confirmation the ledger holds per record digest (hex). */
  private readonly newest = new Map<string, number>();
  private voters: readonly NodeId[];

  constructor(readonly id: NodeId, voters: readonly NodeId[], prng: Prng, private readonly threshold = 2) {
    this.voters = voters;
    this.storage.applySnapshot(bootstrapSnapshot(voters));
    this.raw = new RawNode({ id, storage: this.storage, electionTick: 10, heartbeatTick: 1, randomInt: (k) => prng.int(k) });
  }

  /** Steps one message and runs the Ready loop; returns what the node sent. */
  receive(m: Message): Message[] {
    if (!this.attested(m)) return [];
    this.raw.step(m);
    const out: Message[] = [];
    while (this.raw.hasReady()) {
      const rd = this.raw.ready();
      if (rd.snapshot !== null) {
        this.storage.applySnapshot(rd.snapshot);
        this.vault = VaultStateMachine.restore({ clusterId: CLUSTER }, rd.snapshot.data);
        this.voters = rd.snapshot.metadata.confState.voters;
      }
      this.storage.append(rd.entries);
      if (rd.hardState !== null) this.storage.setHardState(rd.hardState);
      for (const e of rd.committedEntries) this.apply(e);
      out.push(...rd.messages);
      this.raw.advance(rd);
    }
    return out;
  }

  /** False for a snapshot message above the applied index whose state `t` other nodes do not vouch for, or that takes this node's vault back (node/server's stager). */
  private attested(m: Message): boolean {
    const snap = m.snapshot;
    if (m.type !== MessageType.Snap || snap === null || snap.metadata.index <= this.vault.appliedIndex) return true;
    let state: VaultStateMachine;
    try {
      state = VaultStateMachine.restore({ clusterId: CLUSTER }, snap.data);
    } catch {
      this.refusedSnapshots++;
      return false;
    }
    if (runToEnd(rollbackFrom(this.vault.store, state.store)) !== null) {
      this.refusedSnapshots++;
      return false;
    }
    const c = { from: m.from, index: snap.metadata.index, appliedIndex: state.appliedIndex, digest: state.digest(), members: this.voters };
    const answers = [...this.directory].filter(([id]) => id !== this.id).map(([id, ask]) => ({ id, digest: ask(c.appliedIndex) }));
    const ok = judge(c, this.threshold, answers, this.id) === "admit";
    if (!ok) this.refusedSnapshots++;
    return ok;
  }

  /** GetStateDigest as node/server answers it: the digest right after `index`, if remembered. */
  digestAt(index: number): Uint8Array | null {
    return this.vault.digestAt(index) ?? null;
  }

  private apply(e: Entry): void {
    if (e.index <= this.vault.appliedIndex) return;
    if (e.type !== EntryType.Normal) this.vault.skip(e.index);
    else this.vault.apply(e.index, e.data, this.voters);
  }

  /**
   * Evaluate as vault-service.ts answers it: the B of a pending attempt of
   * this node's applied state, admitted by its evaluation ledger (at most
   * the record's guess limit of distinct attempts per epoch: digest and last
   * confirmation, node/storage/evaluation-ledger.ts epochOf), else nothing.
   */
  evaluate(user: string, attemptId: number): Uint8Array | undefined {
    if (this.vault.appliedIndex < attemptId) return undefined; // UNAVAILABLE: not applied yet
    const blinded = this.vault.pendingAttempt(user, attemptId)?.blinded;
    const view = this.vault.getRecord(user);
    if (blinded === undefined || view === undefined) return undefined;
    const { digest, confirmation } = epochOf(view);
    if ((this.newest.get(hexOf(digest)) ?? 0) > confirmation) return undefined; // FAILED_PRECONDITION: behind
    this.newest.set(hexOf(digest), confirmation);
    const epoch = `${hexOf(digest)}:${confirmation}`;
    const attempts = this.ledger.get(epoch) ?? new Set<string>();
    const attempt = `${attemptId}:${hexOf(blinded)}`;
    if (!attempts.has(attempt) && attempts.size >= view.record.guessLimit) return undefined; // FAILED_PRECONDITION: spent
    this.ledger.set(epoch, attempts.add(attempt));
    return blinded;
  }

  get lastIndex(): number {
    return this.storage.lastIndex();
  }

  get refusedTruncations(): number {
    return this.raw.status().refusedTruncations;
  }
}

/** The rogue leader: a hand-written sender of per-follower log suffixes, commit indexes and snapshots. */
export class RogueLeader {
  /** The digests it vouches for, by index: its forgeries. */
  private readonly lies = new Map<number, Uint8Array>();

  constructor(readonly id: NodeId, private readonly voters: readonly NodeId[]) {}

  /** GetStateDigest as the rogue answers it: the digest of its forgery at `index`. */
  digestAt(index: number): Uint8Array | null {
    return this.lies.get(index) ?? null;
  }

  /** Appends `data` right after the follower's last entry, with a commit index covering it; returns its index. */
  append(to: HonestFollower, data: Uint8Array): number {
    const prev = to.lastIndex;
    const index = prev + 1;
    const entry: Entry = { term: TERM, index, type: EntryType.Normal, data };
    to.receive(message({
      type: MessageType.App, from: this.id, to: to.id, term: TERM, index: prev, logTerm: to.storage.term(prev),
      entries: [entry], commit: index,
    }));
    return index;
  }

  /**
   * Sends a complete InstallSnapshot whose vault holds `reg` freshly
   * registered (attempts 0), above the follower's log: a counter reset that
   * no entry could make.
   */
  forgeSnapshot(to: HonestFollower, reg: Registration): void {
    const index = to.lastIndex + 1;
    const vault = new VaultStateMachine({ clusterId: CLUSTER });
    vault.apply(2, encodeCommand(registerCmd(reg)), this.voters);
    vault.skip(index);
    this.vouch(index, vault.digest());
    this.sendSnapshot(to, index, vault.snapshot());
  }

  /**
   * Brings every node of `group` to the same index above `above` with the
   * same fillers, and sends each of `to` that state at that index, vouching
   * for it: a state honest nodes truly hold, of another history than `to`'s.
   */
  sendOtherHistory(group: readonly HonestFollower[], to: readonly HonestFollower[], above: number, prng: Prng): void {
    while (Math.max(...group.map((h) => h.lastIndex)) <= above) {
      const filler = encodeCommand(beginCmd(NOBODY, blindedPoint(1 + prng.int(0x7fffffff))));
      for (const h of group) this.append(h, filler);
    }
    const source = group[0] as HonestFollower;
    const index = source.vault.appliedIndex;
    if (group.some((h) => h.vault.appliedIndex !== index)) throw new Error("the other history's nodes are not at one index");
    this.vouch(index, source.vault.digest());
    for (const h of to) this.sendSnapshot(h, index, source.vault.snapshot());
  }

  /** From now on answers `digest` when asked for its digest at `index`. */
  vouch(index: number, digest: Uint8Array): void {
    this.lies.set(index, digest);
  }

  /** Sends a complete InstallSnapshot at `index` carrying the vault snapshot `data`. */
  sendSnapshot(to: HonestFollower, index: number, data: Uint8Array): void {
    const metadata = { index, term: TERM, confState: { voters: [...this.voters], learners: [] } };
    to.receive(message({
      type: MessageType.Snap, from: this.id, to: to.id, term: TERM,
      snapshot: { metadata, totalSize: data.byteLength, offset: 0, data, done: true },
    }));
  }
}

/** Lets every honest follower ask every other node (the rogue included) for its digest. */
export function connect(honest: readonly HonestFollower[], rogue: RogueLeader): void {
  const directory: Directory = new Map([...honest.map((h) => [h.id, (i: number) => h.digestAt(i)] as const), [rogue.id, (i: number) => rogue.digestAt(i)]]);
  for (const h of honest) h.directory = directory;
}

/** The honest node subsets of each guess, as positions 0..n−f−1 into a shuffled list of honest nodes. */
function plan(strategy: Strategy, c: BoundCase, guess: number): number[] {
  const h = c.n - c.f;
  const k = c.t - c.f;
  if (strategy === "other-history" || strategy === "replay-registration") return Array.from({ length: k }, (_, i) => i);
  if (strategy === "disjoint") {
    const group = guess % Math.floor(h / k);
    return Array.from({ length: k }, (_, i) => group * k + i);
  }
  return Array.from({ length: k }, (_, i) => (guess * k + i) % h);
}

/** Runs one attack and counts the guesses obtained. */
export function measureBound(c: BoundCase, strategy: Strategy, seed: number): BoundMeasure {
  if (c.f !== 1) throw new RangeError("this simulation plays one rogue node (f = 1)");
  if (!(c.t > c.f && c.t <= c.n)) throw new RangeError(`need f < t <= n (t=${c.t}, n=${c.n})`);
  const prng = new Prng(seed);
  const ids = Array.from({ length: c.n }, (_, i) => i + 1);
  const rogue = new RogueLeader(c.n, ids);
  const honest = shuffle(ids.slice(0, c.n - c.f).map((id) => new HonestFollower(id, ids, prng.fork(`node-${id}`), c.t)), prng);
  connect(honest, rogue);
  const reg = register(USER, { guessLimit: c.guessLimit, threshold: c.t, nodes: ids.map((id) => makeNode(id)) });
  const registration = encodeCommand(registerCmd(reg)); // one entry for all: its owner signature is randomized
  const [spent, others] = [honest.slice(0, c.t - c.f), honest.slice(c.t - c.f)];
  for (const node of strategy === "replay-registration" ? spent : honest) rogue.append(node, registration);
  const attack = new Attack(c, strategy, honest, rogue, prng);
  attack.spend();
  if (strategy === "forged-snapshot") {
    for (let round = 0; round < FORGED_ROUNDS; round++) {
      for (const node of honest) rogue.forgeSnapshot(node, reg);
      attack.spend();
    }
  }
  if (strategy === "other-history" || strategy === "replay-registration") {
    for (let round = 0; round < FORGED_ROUNDS && others.length > 0; round++) {
      rogue.sendOtherHistory(others, spent, Math.max(...spent.map((h) => h.lastIndex)), prng);
      if (strategy === "replay-registration") for (const node of spent) rogue.append(node, registration);
      attack.spend();
    }
  }
  return { ...c, strategy, seed, measured: attack.guesses, documented: documentedBound(c), counting: countingBound(c), refusedEvaluations: attack.refused,
    refusedSnapshots: honest.reduce((n, h) => n + h.refusedSnapshots, 0),
  };
}

/** The attacker's loop: keeps asking for guesses well past any bound; the honest counters must stop it. */
class Attack {
  guesses = 0;
  refused = 0;
  private next = 0;

  constructor(
    private readonly c: BoundCase, private readonly strategy: Strategy, private readonly honest: readonly HonestFollower[],
    private readonly rogue: RogueLeader, private readonly prng: Prng,
  ) {}

  /** Tries L·(n−f) + 2 guesses: more than any counting bound allows. */
  spend(): void {
    const tries = this.c.guessLimit * (this.c.n - this.c.f) + 2;
    for (let i = 0; i < tries; i++) this.tryGuess(this.strategy === "disjoint" ? i : this.next++);
  }

  private tryGuess(slot: number): void {
    const b = blindedPoint(1 + this.prng.int(0x7fffffff));
    const nodes = shuffle(plan(this.strategy, this.c, slot).map((p) => this.honest[p] as HonestFollower), this.prng);
    let evaluations = this.c.f; // the rogue evaluates its own share of anything
    for (const node of nodes) {
      const attemptId = this.rogue.append(node, encodeCommand(beginCmd(USER, b)));
      const got = node.evaluate(USER, attemptId);
      if (got !== undefined && equalBytes(got, b)) evaluations++;
      else this.refused++;
    }
    if (evaluations >= this.c.t) this.guesses++;
  }
}

function shuffle<T>(xs: T[], prng: Prng): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = prng.int(i + 1);
    [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
  }
  return xs;
}

/** The (t, n) pairs of DESIGN §5 and issue 10, f = 1. */
export const BOUND_CASES: readonly BoundCase[] = [3, 10].flatMap((guessLimit) => [
  { t: 2, n: 3, f: 1, guessLimit },
  { t: 3, n: 5, f: 1, guessLimit },
  { t: 4, n: 5, f: 1, guessLimit },
]);

export const STRATEGIES: readonly Strategy[] = ["disjoint", "cyclic", "forged-snapshot", "other-history", "replay-registration"];

/** A Markdown table of measurements. */
export function boundTable(rows: readonly BoundMeasure[]): string {
  const head = "| (t, n) | f | L | strategy | measured | L·floor((n−f)/(t−f)) | floor(L·(n−f)/(t−f)) |\n|---|---|---|---|---|---|---|";
  const body = rows.map((r) => `| (${r.t}, ${r.n}) | ${r.f} | ${r.guessLimit} | ${r.strategy} | ${r.measured} | ${r.documented} | ${r.counting} |`);
  return [head, ...body].join("\n");
}

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");

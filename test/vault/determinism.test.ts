// Determinism and invariants under a seeded random log of valid and invalid
// commands with duplicates (DESIGN §6.1, §6.4, §6.6).
import test, { type ExecutionContext } from "ava";
import type { Registration } from "../../proto/crypto/index.js";
import { type Command, type VaultResult, VaultStateMachine, decodeCommand, encodeCommand } from "../../node/vault/index.js";
import { CLUSTER, NODES, VOTERS, announcement, blindedPoint, confirmCmd, deleteCmd, hex, makeNode, newRequestId, register, registerCmd, contentDigest } from "../../testkit/vault.js";

/** mulberry32: a small seeded PRNG (tests only). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const USERS = ["ann", "ben", "cy"];
/** Per user, a chain of versions 1..3, each overwrite signed by the previous reset key; guess limits 2..4. */
const CHAINS = new Map<string, Registration[]>(
  USERS.map((user, i) => {
    const v1 = register(user, { guessLimit: 2 + i });
    const v2 = register(user, { version: 2, previous: v1, guessLimit: 3 });
    const v3 = register(user, { version: 3, previous: v2, guessLimit: 2 });
    return [user, [v1, v2, v3]];
  }),
);

const OUTSIDER = register("dan", { nodes: [makeNode(4)], threshold: 1 });

type Entry = { kind: "apply"; data: Uint8Array } | { kind: "skip" };

/** Picks the next log entry; commands that need state (confirm) read machine `view`. */
function nextEntry(rand: () => number, view: VaultStateMachine, history: Uint8Array[]): Entry {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const user = pick([...USERS, "ghost"]);
  const chain = CHAINS.get(user) ?? (CHAINS.get("ann") as Registration[]);
  const current = view.getRecord(user);
  const currentReg = chain[(current?.record.version ?? 1) - 1] ?? (chain[0] as Registration);
  const roll = rand();
  let c: Command | Uint8Array;
  if (roll < 0.12) c = registerCmd(pick(chain));
  else if (roll < 0.45) c = { kind: "begin", requestId: newRequestId(), user, blinded: blindedPoint(Math.floor(rand() * 50)) };
  else if (roll < 0.62) {
    const pending = current?.pending ?? [];
    const attemptId = pending.length > 0 && rand() < 0.8 ? pick(pending).attemptId : 1 + Math.floor(rand() * 400);
    const key = rand() < 0.85 ? currentReg.resetPrivateKey : (pick(chain) as Registration).resetPrivateKey;
    c = confirmCmd(currentReg, attemptId, { key });
  } else if (roll < 0.66) c = deleteCmd(currentReg, rand() < 0.5 ? {} : { key: 77n });
  else if (roll < 0.78 && history.length > 0) c = pick(history); // a retry of an earlier payload
  else if (roll < 0.83) c = garbage(rand, history);
  else if (roll < 0.87) c = new Uint8Array(0);
  else if (roll < 0.9) return { kind: "skip" };
  else if (roll < 0.95) c = { kind: "announce", node: announcement(rand() < 0.8 ? pick(NODES) : makeNode(2, 5n), `10.0.0.${Math.floor(rand() * 4)}:1`) };
  else c = registerCmd(OUTSIDER); // share holder 4 is not a voter
  const data = c instanceof Uint8Array ? c : encodeCommand(c);
  if (data.length > 0) history.push(data);
  return { kind: "apply", data };
}

function garbage(rand: () => number, history: Uint8Array[]): Uint8Array {
  const base = history.length > 0 ? (history[Math.floor(rand() * history.length)] as Uint8Array) : new Uint8Array(40);
  const out = base.slice(0, Math.floor(rand() * base.length));
  const at = Math.floor(rand() * out.length);
  if (rand() < 0.5 && out.length > 0) out[at] = (out[at] ?? 0) ^ (1 + Math.floor(rand() * 255));
  return out;
}

/**
 * Tracks DESIGN §6.1 and §6.4 on one machine across the log: fresh begins
 * since the last verified reset never exceed the guess limit, and attempts
 * never decrease except by a verified reset. A retry answered from the
 * request-id table is not fresh: a begin is fresh iff its attempt id is this
 * index; a reset is fresh iff it changed the content.
 */
class InvariantChecker {
  private readonly beginsSinceReset = new Map<string, number>();
  private readonly attempts = new Map<string, number>();
  private content = "";

  constructor(private readonly t: ExecutionContext) {}

  check(sm: VaultStateMachine, entry: Entry, result: VaultResult | undefined, index: number): void {
    const target = entry.kind === "apply" ? targetUser(entry.data) : undefined;
    const content = hex(contentDigest(sm));
    const changed = content !== this.content;
    this.content = content;
    const freshReset = result?.ok === true && changed && ["confirm", "register", "delete"].includes(result.kind);
    if (target !== undefined && result?.ok === true && result.kind === "begin" && result.attemptId === index) {
      this.beginsSinceReset.set(target, (this.beginsSinceReset.get(target) ?? 0) + 1);
    }
    if (target !== undefined && freshReset) this.beginsSinceReset.set(target, 0);
    for (const user of [...USERS, "ghost"]) this.checkUser(sm, user, freshReset && target === user, index);
  }

  private checkUser(sm: VaultStateMachine, user: string, resetHere: boolean, index: number): void {
    const view = sm.getRecord(user);
    const now = view?.attempts ?? 0;
    const before = this.attempts.get(user) ?? 0;
    if (now < before && !resetHere) this.t.fail(`index ${index}: attempts of ${user} went ${before} → ${now} without a verified reset`);
    this.attempts.set(user, now);
    if (view === undefined) return;
    if (view.attempts > view.record.guessLimit) this.t.fail(`index ${index}: ${user} has ${view.attempts} attempts > limit ${view.record.guessLimit}`);
    if ((this.beginsSinceReset.get(user) ?? 0) > view.record.guessLimit) this.t.fail(`index ${index}: ${user} authorized more than its guess limit`);
    if (view.locked && (view.record.shares.length > 0 || view.pending.length > 0)) this.t.fail(`index ${index}: ${user} locked with material left`);
    for (const p of view.pending) if (sm.pendingAttempt(user, p.attemptId) === undefined) this.t.fail(`index ${index}: pending attempt not served`);
  }
}

/** The user a payload is about (for the checker; undefined if it does not parse). */
function targetUser(data: Uint8Array): string | undefined {
  try {
    const c = decodeCommand(data);
    return c.kind === "register" ? c.record.user : c.kind === "announce" || c.kind === "issuers" || c.kind === "bind-shares" ? undefined : c.user;
  } catch {
    return undefined;
  }
}

function run(t: ExecutionContext, seed: number, steps: number): { a: VaultStateMachine; b: VaultStateMachine } {
  const rand = prng(seed);
  let a = new VaultStateMachine({ clusterId: CLUSTER, requestIdCapacity: 64 });
  let b = new VaultStateMachine({ clusterId: CLUSTER, requestIdCapacity: 64 });
  const checker = new InvariantChecker(t);
  const history: Uint8Array[] = [];
  for (let i = 0; i < steps; i++) {
    const index = i + 2;
    const entry = nextEntry(rand, a, history);
    let ra: VaultResult | undefined;
    if (entry.kind === "skip") {
      a.skip(index);
      b.skip(index);
    } else {
      const oa = a.apply(index, entry.data, VOTERS);
      const ob = b.apply(index, entry.data, VOTERS);
      t.deepEqual(ob, oa, `step ${i}: both machines answer the same`);
      ra = oa.result;
    }
    checker.check(a, entry, ra, index);
    if (i === Math.floor(steps / 2)) b = VaultStateMachine.restore({ clusterId: CLUSTER }, b.snapshot());
    if (i === Math.floor((2 * steps) / 3)) a = VaultStateMachine.restore({ clusterId: CLUSTER }, a.snapshot());
  }
  return { a, b };
}

for (const seed of [1, 2, 3]) {
  test(`seed ${seed}: a random log with invalid commands and duplicates gives equal digests and keeps the guess bound`, (t) => {
    const { a, b } = run(t, seed, 200);
    t.is(hex(a.digest()), hex(b.digest()));
    t.is(a.appliedIndex, 201);
    const outcomes = USERS.map((u) => a.getRecord(u)).filter((v) => v !== undefined);
    t.true(outcomes.length > 0, "some records exist at the end");
  });
}

test("the random log exercises every outcome", (t) => {
  const rand = prng(11);
  const sm = new VaultStateMachine({ clusterId: CLUSTER, requestIdCapacity: 64 });
  const seen = new Set<string>();
  const history: Uint8Array[] = [];
  for (let i = 0; i < 400; i++) {
    const entry = nextEntry(rand, sm, history);
    if (entry.kind === "skip") {
      sm.skip(i + 2);
      continue;
    }
    const r = sm.apply(i + 2, entry.data, VOTERS).result;
    seen.add(r.ok ? r.kind : r.code);
  }
  for (const k of ["register", "begin", "confirm", "delete", "announce", "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED"]) {
    t.true(seen.has(k), k);
  }
});

test("two machines applying the same log in the same order reach the same digest; a different order differs", (t) => {
  const ann = CHAINS.get("ann") as Registration[];
  const log = [registerCmd(ann[0] as Registration), { kind: "begin", requestId: newRequestId(), user: "ann", blinded: blindedPoint(1) } as Command, registerCmd(register("zoe"))].map((c) => encodeCommand(c));
  const run1 = new VaultStateMachine({ clusterId: CLUSTER });
  const run2 = new VaultStateMachine({ clusterId: CLUSTER });
  log.forEach((d, i) => run1.apply(i + 2, d, VOTERS));
  log.forEach((d, i) => run2.apply(i + 2, d, VOTERS));
  t.is(hex(run1.digest()), hex(run2.digest()));
  const run3 = new VaultStateMachine({ clusterId: CLUSTER });
  [log[2], log[0], log[1]].forEach((d, i) => run3.apply(i + 2, d as Uint8Array, VOTERS));
  t.not(hex(run3.digest()), hex(run1.digest()));
});

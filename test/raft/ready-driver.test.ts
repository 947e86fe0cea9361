// The Ready driver on its own: a scripted Ready source, a MemoryStorage that
// holds what is durable, and a host that records the order of everything
// (write started, sends early or late, applies, advance). The write completes
// only when the test calls writeDone().
import test from "ava";
import {
  type Entry, EntryType, type HardState, MemoryStorage, type Message, MessageType, type Ready, ReadyDriver, StateType,
  bootstrapSnapshot, message,
} from "../../node/raft/index.js";

const ent = (index: number, term = 2): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array(0) });
const hs = (term: number, vote: number, commit: number): HardState => ({ term, vote, commit });
const rd = (p: Partial<Ready>): Ready => ({
  softState: null, hardState: null, readStates: [], entries: [], snapshot: null, committedEntries: [], messages: [], mustSync: false, ...p,
});
const appResp = (index: number): Message => message({ type: MessageType.AppResp, from: 1, to: 2, term: 2, index });
const app = (to: number, commit: number, entries: Entry[]): Message =>
  message({ type: MessageType.App, from: 1, to, term: 2, index: entries[0]!.index - 1, logTerm: 2, commit, entries });

/** A driver over scripted Readys; `durable` is what the storage holds when the first Ready is taken. */
function setup(script: Ready[], durable: { hs: HardState; last: number }) {
  const storage = new MemoryStorage();
  storage.applySnapshot(bootstrapSnapshot([1, 2, 3]));
  storage.append(Array.from({ length: durable.last - 1 }, (_, i) => ent(i + 2)));
  storage.setHardState(durable.hs);
  const log: string[] = [];
  const queue = [...script];
  const source = {
    hasReady: () => queue.length > 0,
    ready: () => queue.shift()!,
    advance: () => { log.push("advance"); },
  };
  const driver = new ReadyDriver(source, storage, {
    observe: () => { log.push("observe"); },
    write: (r) => { log.push(`write ${r.entries.map((e) => e.index).join(",")}`); },
    send: (msgs, whileWriting) => { log.push(`send${whileWriting ? " early" : ""} ${msgs.map((m) => MessageType[m.type]).join(",")}`); },
    apply: (r, whileWriting) => { log.push(`apply${whileWriting ? " early" : ""} ${r.committedEntries.map((e) => e.index).join(",")}`); },
  });
  /** Completes the write: the entries and hard state become durable, then the driver goes on. */
  const complete = (r: Ready) => {
    storage.append(r.entries);
    if (r.hardState !== null) storage.setHardState(r.hardState);
    driver.writeDone();
  };
  return { driver, log, complete };
}

const steady = { hs: hs(2, 1, 3), last: 5 };

test("a follower's append response leaves only once its write completed", (t) => {
  const r = rd({ hardState: hs(2, 1, 3), entries: [ent(6), ent(7)], messages: [appResp(7)], mustSync: true });
  const { driver, log, complete } = setup([r], steady);
  t.true(driver.next());
  t.false(log.some((l) => l.startsWith("send")), "nothing leaves while the write runs");
  complete(r);
  t.deepEqual(log, ["observe", "write 6,7", "apply early ", "send AppResp", "advance"]);
});

test("a follower's append response leaves, and the entries it commits are applied, only once its write completed", (t) => {
  const r = rd({
    hardState: hs(2, 1, 7), entries: [ent(6), ent(7)], committedEntries: [ent(4), ent(5), ent(6), ent(7)], messages: [appResp(7)],
    mustSync: true,
  });
  const { driver, log, complete } = setup([r], steady);
  t.true(driver.next());
  t.deepEqual(log, ["observe", "write 6,7"], "nothing leaves and nothing is applied while the write runs");
  complete(r);
  t.deepEqual(log, ["observe", "write 6,7", "send AppResp", "apply 4,5,6,7", "advance"]);
});

test("a leader's replication leaves while it writes; entries durable before are applied meanwhile", (t) => {
  const r = rd({
    softState: { lead: 1, state: StateType.Leader }, hardState: hs(2, 1, 5), entries: [ent(6)], committedEntries: [ent(4), ent(5)],
    messages: [app(2, 5, [ent(6)]), app(3, 5, [ent(6)])], mustSync: true,
  });
  const { driver, log, complete } = setup([r], steady);
  driver.next();
  t.deepEqual(log, ["observe", "write 6", "send early App,App", "apply early 4,5"]);
  complete(r);
  t.deepEqual(log.slice(4), ["advance"], "nothing waited for the write");
});

test("an entry committed in the Ready that writes it is applied only after the write (a single voter commits at append)", (t) => {
  const r = rd({
    softState: { lead: 1, state: StateType.Leader }, hardState: hs(2, 1, 6), entries: [ent(6)], committedEntries: [ent(6)],
    messages: [app(2, 6, [ent(6)])], mustSync: true,
  });
  const { driver, log, complete } = setup([r], steady);
  driver.next();
  t.deepEqual(log, ["observe", "write 6"], "a commit index above the durable log keeps even the leader's App");
  complete(r);
  t.deepEqual(log.slice(2), ["send App", "apply 6", "advance"]);
});

test("a follower's Ready that replaces a committed-to-be entry applies it only once the new entry is durable", (t) => {
  const r = rd({ hardState: hs(2, 1, 5), entries: [ent(5, 3)], committedEntries: [ent(4), ent(5, 3)], mustSync: true });
  const { driver, log, complete } = setup([r], steady);
  driver.next();
  t.deepEqual(log, ["observe", "write 5"]);
  complete(r);
  t.deepEqual(log.slice(2), ["apply 4,5", "advance"]);
});

test("a new term or vote keeps every message until it is durable", (t) => {
  const r = rd({
    softState: { lead: 1, state: StateType.Leader }, hardState: hs(3, 1, 3), entries: [ent(6, 3)],
    messages: [app(2, 3, [ent(6, 3)])], mustSync: true,
  });
  const { driver, log } = setup([r], steady);
  driver.next();
  t.deepEqual(log, ["observe", "write 6", "apply early "], "nothing sent (and nothing to apply)");
});

test("a Ready that only moves the commit index sends and applies everything while it writes", (t) => {
  const r = rd({ hardState: hs(2, 1, 5), committedEntries: [ent(4), ent(5)], messages: [appResp(5)] });
  const { driver, log } = setup([r], steady);
  driver.next();
  t.deepEqual(log, ["observe", "write ", "send early AppResp", "apply early 4,5"]);
});

test("only one Ready is in flight: the next is taken only after the write completed and the Ready was advanced", (t) => {
  const a = rd({ hardState: hs(2, 1, 3), entries: [ent(6)], mustSync: true });
  const b = rd({ hardState: hs(2, 1, 3), entries: [ent(7)], mustSync: true });
  const { driver, log, complete } = setup([a, b], steady);
  t.true(driver.next());
  t.true(driver.writing);
  t.false(driver.next(), "a second Ready while the first is written");
  complete(a);
  t.false(driver.writing);
  t.true(driver.next());
  t.deepEqual(log, ["observe", "write 6", "apply early ", "advance", "observe", "write 7", "apply early "]);
  t.throws(() => { complete(b); driver.writeDone(); }, { message: /no write in flight/ });
});

test("no Ready: next() does nothing", (t) => {
  const { driver, log } = setup([], steady);
  t.false(driver.next());
  t.deepEqual(log, []);
});

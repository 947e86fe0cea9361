// The digest ring (node/vault/digest-ring.ts) and VaultStateMachine.digestAt:
// the digest right after each applied index, for a bounded window.
import test from "ava";
import { DigestRing, VaultStateMachine } from "../../node/vault/index.js";
import { CLUSTER, Harness, beginCmd, hex, register, registerCmd } from "../../testkit/vault.js";

test("digestAt(i) is the digest right after index i, skipped entries included, for the last `digestWindow` indexes", (t) => {
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER, digestWindow: 4 }));
  const seen = new Map<number, string>([[0, hex(h.sm.digest())]]);
  h.apply(registerCmd(register("alice")));
  seen.set(h.index, hex(h.sm.digest()));
  h.sm.skip(++h.index);
  seen.set(h.index, hex(h.sm.digest()));
  for (let i = 0; i < 3; i++) {
    h.apply(beginCmd("alice"));
    seen.set(h.index, hex(h.sm.digest()));
  }
  const last = h.index;
  for (const [i, d] of seen) {
    if (i > last - 4) t.is(hex(h.sm.digestAt(i) ?? new Uint8Array(0)), d, `index ${i}`);
    else t.is(h.sm.digestAt(i), undefined, `index ${i} was evicted`);
  }
  t.is(h.sm.digestAt(last + 1), undefined, "not applied yet");
  t.is(h.sm.digestAt(-1), undefined);
});

test("a state opened or restored remembers the index it is at, not before", (t) => {
  const h = new Harness();
  h.apply(registerCmd(register("bob")));
  h.apply(beginCmd("bob"));
  const restored = VaultStateMachine.restore({ clusterId: CLUSTER }, h.sm.snapshot());
  t.is(hex(restored.digestAt(h.index) ?? new Uint8Array(0)), hex(h.sm.digest()));
  t.is(restored.digestAt(h.index - 1), undefined);
});

test("the ring refuses an index recorded out of order and a digest of the wrong size", (t) => {
  const ring = new DigestRing(8);
  ring.record(5, new Uint8Array(32));
  t.throws(() => ring.record(5, new Uint8Array(32)), { message: /recorded after index 5/ });
  t.throws(() => ring.record(6, new Uint8Array(31)), { message: /31 bytes/ });
  t.throws(() => new DigestRing(0));
  const copy = ring.digestAt(5);
  copy?.fill(9);
  t.is(hex(ring.digestAt(5) ?? new Uint8Array(1)), hex(new Uint8Array(32)), "handed out as a copy");
});

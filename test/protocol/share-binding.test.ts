// Bound shares (proto/crypto/share-binding.ts): each share of a record is
// signed with its wrap's ephemeral secret over that record, so a share copied
// into any other record (another user, reset key, limit, cluster...) is told
// apart by anyone, from the record alone.
import test from "ava";
import {
  ORDER,
  type RegistrationRecord,
  bytesToBigInt,
  bigIntToBytes,
  createRegistration,
  firstMisboundShare,
  firstUnboundShare,
  parseWrappedShare,
  randomScalar,
  unwrapShareForTest,
  wrapShare,
} from "../../proto/crypto/index.js";
import { TEST_SCRYPT, makeNodes, randomKey } from "../../testkit/protocol.js";

const nodes = makeNodes([1, 2, 3]);
const register = (user: string, clusterId = "c") =>
  createRegistration({ clusterId, user, password: "pw", backupKey: randomKey(), threshold: 2, guessLimit: 10, nodes, scrypt: TEST_SCRYPT }).record;
const victim = register("victim");
const mallory = register("mallory");

/** `into` with the shares (wrapped and public) of `from`: what a holder of `from` could register. */
const withSharesOf = (into: RegistrationRecord, from: RegistrationRecord): RegistrationRecord => ({ ...into, shares: from.shares });

test("a client's registration is bound: every share is a v2 blob whose signature verifies for its record", (t) => {
  t.true(victim.shares.every((s) => parseWrappedShare(s.wrappedShare).version === 2));
  t.is(firstUnboundShare(victim), null);
  t.is(firstMisboundShare("c", victim), null);
  const node = nodes[0]!;
  t.is(typeof unwrapShareForTest(victim.shares[0]!.wrappedShare, node.agreementPrivateKey), "bigint");
});

test("the victim's shares copied into another user's record do not verify there", (t) => {
  t.is(firstMisboundShare("c", withSharesOf(mallory, victim)), 1);
  t.is(firstMisboundShare("c", { ...victim, user: "mallory" }), 1);
});

test("any other field changed makes another record: reset key, guess limit, version, salt, scrypt, ciphertext, threshold, cluster", (t) => {
  const variants: Array<[string, RegistrationRecord]> = [
    ["reset key", { ...victim, resetPublicKey: mallory.resetPublicKey }],
    ["guess limit", { ...victim, guessLimit: 255 }],
    ["version", { ...victim, version: 2 }],
    ["salt", { ...victim, salt: mallory.salt }],
    ["scrypt", { ...victim, scrypt: { ...victim.scrypt, N: victim.scrypt.N * 2 } }],
    ["ciphertext", { ...victim, ciphertext: mallory.ciphertext }],
    ["threshold", { ...victim, threshold: 3 }],
  ];
  for (const [what, rec] of variants) t.is(firstMisboundShare("c", rec), 1, what);
  t.is(firstMisboundShare("another-cluster", victim), 1, "cluster id");
});

test("a share is bound to the other shares too: another node's blob replaced, or two shares swapped, is caught", (t) => {
  const otherBlob = { ...victim.shares[1]!, wrappedShare: mallory.shares[1]!.wrappedShare };
  t.is(firstMisboundShare("c", { ...victim, shares: [victim.shares[0]!, otherBlob, victim.shares[2]!] }), 1);
  const swapped = [victim.shares[0]!, { ...victim.shares[1]!, wrappedShare: victim.shares[2]!.wrappedShare }, { ...victim.shares[2]!, wrappedShare: victim.shares[1]!.wrappedShare }];
  t.is(firstMisboundShare("c", { ...victim, shares: swapped }), 1, "node 1's signature covers the swapped blobs");
});

test("a signature edited in place, or its high-S twin, does not verify (every node reaches the same verdict)", (t) => {
  const blob = victim.shares[2]!.wrappedShare;
  const flipped = blob.slice();
  flipped[70] = (flipped[70] ?? 0) ^ 1;
  const s = bytesToBigInt(blob.subarray(1 + 65 + 32, 1 + 65 + 64));
  const twin = blob.slice();
  twin.set(bigIntToBytes(ORDER - s, 32), 1 + 65 + 32);
  for (const wrappedShare of [flipped, twin]) {
    t.is(firstMisboundShare("c", { ...victim, shares: [victim.shares[0]!, victim.shares[1]!, { ...victim.shares[2]!, wrappedShare }] }), 3);
  }
});

test("unbound (v1) shares: firstUnboundShare names the first; firstMisboundShare does not judge them", (t) => {
  const v1 = { ...victim, shares: victim.shares.map((s, i) => ({ ...s, wrappedShare: wrapShare(nodes[i]!.agreementPublicKey, randomScalar()) })) };
  t.is(firstUnboundShare(v1), 1);
  t.is(firstMisboundShare("c", v1), null);
  const mixed = { ...victim, shares: [victim.shares[0]!, victim.shares[1]!, v1.shares[2]!] };
  t.is(firstUnboundShare(mixed), 3);
  t.is(firstMisboundShare("c", mixed), 1, "a bound share's signature covers the other blobs, v1 ones included");
});

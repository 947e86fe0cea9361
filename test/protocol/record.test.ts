import test from "ava";
import {
  InvalidArgumentError,
  InvalidEncodingError,
  InvalidLengthError,
  type RegistrationRecord,
  UnsupportedVersionError,
  Writer,
  createRegistration,
  decodeRecord,
  encodePoint,
  encodeRecord,
  encodePublicPart,
  publicPartDigest,
  recordDigest,
  wrapShare,
  randomScalar,
} from "../../proto/crypto/index.js";
import { TEST_SCRYPT, hex, makeNodes, randomKey, randomPoint } from "../../testkit/protocol.js";

const nodes = makeNodes([1, 2, 3]);
const { record } = createRegistration({
  clusterId: "c",
  user: "alice",
  password: "pw",
  backupKey: randomKey(),
  threshold: 2,
  guessLimit: 10,
  nodes,
  scrypt: TEST_SCRYPT,
});

test("a record round-trips through its canonical encoding", (t) => {
  const bytes = encodeRecord(record);
  t.deepEqual(decodeRecord(bytes), record);
  t.is(hex(encodeRecord(decodeRecord(bytes))), hex(bytes));
  t.is(recordDigest(record).length, 32);
});

test("share order does not change the encoding", (t) => {
  const reversed = { ...record, shares: [...record.shares].reverse() };
  t.is(hex(encodeRecord(reversed)), hex(encodeRecord(record)));
});

const flip = (b: Uint8Array) => {
  const c = b.slice();
  c[c.length - 1] = (c[c.length - 1] ?? 0) ^ 1;
  return c;
};

test("the digest changes when any field changes", (t) => {
  const base = hex(recordDigest(record));
  const s0 = record.shares[0]!;
  const variants: Array<[string, RegistrationRecord]> = [
    ["user", { ...record, user: "alicE" }],
    ["version", { ...record, version: 2 }],
    ["threshold", { ...record, threshold: 3 }],
    ["guessLimit", { ...record, guessLimit: 9 }],
    ["share node id", { ...record, shares: [{ ...s0, nodeId: 7 }, ...record.shares.slice(1)] }],
    ["share K_i", { ...record, shares: [{ ...s0, publicShare: encodePoint(randomPoint()) }, ...record.shares.slice(1)] }],
    ["share blob", { ...record, shares: [{ ...s0, wrappedShare: wrapShare(nodes[0]!.agreementPublicKey, randomScalar()) }, ...record.shares.slice(1)] }],
    ["share dropped", { ...record, threshold: 2, shares: record.shares.slice(1) }],
    ["ciphertext", { ...record, ciphertext: flip(record.ciphertext) }],
    ["reset key", { ...record, resetPublicKey: encodePoint(randomPoint()) }],
    ["salt", { ...record, salt: flip(record.salt) }],
    ["scrypt N", { ...record, scrypt: { ...record.scrypt, N: 2048 } }],
    ["scrypt r", { ...record, scrypt: { ...record.scrypt, r: 4 } }],
    ["scrypt p", { ...record, scrypt: { ...record.scrypt, p: 2 } }],
  ];
  const digests = new Set([base]);
  for (const [name, v] of variants) {
    const d = hex(recordDigest(v));
    t.not(d, base, name);
    digests.add(d);
  }
  t.is(digests.size, variants.length + 1);
});

test("the decoder refuses non-canonical or corrupt encodings", (t) => {
  const bytes = encodeRecord(record);
  t.throws(() => decodeRecord(Uint8Array.of(...bytes, 0)), { instanceOf: InvalidEncodingError });
  t.throws(() => decodeRecord(bytes.subarray(0, bytes.length - 1)), { instanceOf: InvalidEncodingError });
  const magic = bytes.slice();
  magic[0] = 0x41;
  t.throws(() => decodeRecord(magic), { instanceOf: InvalidEncodingError });
  const v2 = bytes.slice();
  v2[4] = 2;
  t.throws(() => decodeRecord(v2), { instanceOf: UnsupportedVersionError });
  // swap the first two shares in place: same bytes, wrong order
  const [a, b] = [record.shares[0]!, record.shares[1]!];
  const enc = (s: typeof a) => new Writer().u64(s.nodeId).fixed(s.publicShare).lp16(s.wrappedShare).bytes();
  const ea = hex(enc(a));
  const eb = hex(enc(b));
  const swapped = hex(bytes).replace(ea + eb, eb + ea);
  t.not(swapped, hex(bytes));
  t.throws(() => decodeRecord(new Uint8Array(Buffer.from(swapped, "hex"))), { instanceOf: InvalidEncodingError });
});

test("invalid records are refused with specific errors", (t) => {
  t.throws(() => encodeRecord({ ...record, threshold: 4 }), { instanceOf: InvalidArgumentError });
  t.throws(() => encodeRecord({ ...record, guessLimit: 0 }), { instanceOf: InvalidArgumentError });
  t.throws(() => encodeRecord({ ...record, guessLimit: 256 }), { instanceOf: InvalidArgumentError });
  t.throws(() => encodeRecord({ ...record, shares: [record.shares[0]!, record.shares[0]!] }), { instanceOf: InvalidArgumentError });
  t.throws(() => encodeRecord({ ...record, resetPublicKey: encodePoint(randomPoint(), false) }), { instanceOf: InvalidLengthError });
  t.throws(() => encodeRecord({ ...record, resetPublicKey: new Uint8Array(33) }), { code: "INVALID_POINT" });
  t.throws(() => encodeRecord({ ...record, salt: new Uint8Array(8) }), { instanceOf: InvalidLengthError });
  t.throws(() => encodeRecord({ ...record, ciphertext: record.ciphertext.subarray(1) }), { instanceOf: InvalidLengthError });
  t.throws(() => encodeRecord({ ...record, scrypt: { N: 3, r: 8, p: 1 } }), { instanceOf: InvalidArgumentError });
  const s0 = record.shares[0]!;
  t.throws(() => encodeRecord({ ...record, shares: [{ ...s0, wrappedShare: s0.wrappedShare.subarray(0, 70) }, ...record.shares.slice(1)] }), {
    instanceOf: InvalidLengthError,
  });
});

test("the canonical writer refuses values that do not fit their width", (t) => {
  t.throws(() => new Writer().u8(256), { instanceOf: InvalidArgumentError });
  t.throws(() => new Writer().u16(-1), { instanceOf: InvalidArgumentError });
  t.throws(() => new Writer().u32(1.5), { instanceOf: InvalidArgumentError });
  t.throws(() => new Writer().u64(2n ** 64n), { instanceOf: InvalidArgumentError });
  t.throws(() => new Writer().lp16(new Uint8Array(65536)), { instanceOf: InvalidLengthError });
  t.is(hex(new Writer().u16(258).u64(1n).str("é").bytes()), "0102" + "0000000000000001" + "0002c3a9");
});

test("the public part (no wrapped shares) has its own encoding and digest", (t) => {
  const publicOnly = { ...record, shares: record.shares.map(({ nodeId, publicShare }) => ({ nodeId, publicShare })) };
  const d = hex(publicPartDigest(publicOnly));
  t.is(hex(publicPartDigest(record)), d);
  t.is(hex(encodePublicPart(record)).slice(0, 8), "626b7650");
  t.not(d, hex(recordDigest(record)));
  const s0 = record.shares[0]!;
  const rewrapped = { ...record, shares: [{ ...s0, wrappedShare: wrapShare(nodes[0]!.agreementPublicKey, randomScalar()) }, ...record.shares.slice(1)] };
  t.is(hex(publicPartDigest(rewrapped)), d);
  t.not(hex(publicPartDigest({ ...publicOnly, guessLimit: 11 })), d);
  t.not(hex(publicPartDigest({ ...publicOnly, shares: [{ ...publicOnly.shares[0]!, publicShare: encodePoint(randomPoint()) }, ...publicOnly.shares.slice(1)] })), d);
  t.throws(() => encodePublicPart({ ...publicOnly, threshold: 0 }), { instanceOf: InvalidArgumentError });
});

import test from "ava";
import { randomBytes } from "node:crypto";
import {
  CIPHERTEXT_LENGTH,
  DEFAULT_SCRYPT,
  G,
  InvalidArgumentError,
  InvalidLengthError,
  UnsupportedVersionError,
  decodePoint,
  decryptBackupKey,
  deriveKeys,
  encryptBackupKey,
  hardenPassword,
  hardenPasswordAsync,
  validateScryptParams,
} from "../../proto/crypto/index.js";
import { TEST_SCRYPT, hex, randomKey } from "../../testkit/protocol.js";

const salt = () => new Uint8Array(randomBytes(16));

test("scrypt hardening is deterministic in (password, salt, params) and sensitive to each", async (t) => {
  const s = salt();
  const a = hardenPassword("correct horse", s, TEST_SCRYPT);
  t.is(a.length, 32);
  t.is(hex(a), hex(hardenPassword("correct horse", s, TEST_SCRYPT)));
  t.is(hex(a), hex(await hardenPasswordAsync("correct horse", s, TEST_SCRYPT)));
  t.not(hex(a), hex(hardenPassword("correct horsf", s, TEST_SCRYPT)));
  t.not(hex(a), hex(hardenPassword("correct horse", salt(), TEST_SCRYPT)));
  t.not(hex(a), hex(hardenPassword("correct horse", s, { ...TEST_SCRYPT, N: 2048 })));
});

test("passwords are NFC-normalized before hardening", (t) => {
  const s = salt();
  t.is(hex(hardenPassword("caf\u00e9", s, TEST_SCRYPT)), hex(hardenPassword("cafe\u0301", s, TEST_SCRYPT)));
});

test("the default scrypt parameters are accepted", (t) => {
  t.notThrows(() => validateScryptParams(DEFAULT_SCRYPT));
});

test("hostile or malformed scrypt inputs are refused", (t) => {
  const bad = [
    { N: 1000, r: 8, p: 1 },
    { N: 512, r: 8, p: 1 },
    { N: 1 << 21, r: 8, p: 1 },
    { N: 1024, r: 0, p: 1 },
    { N: 1024, r: 33, p: 1 },
    { N: 1024, r: 8, p: 0 },
    { N: 1 << 20, r: 32, p: 16 },
  ];
  for (const p of bad) t.throws(() => hardenPassword("pw", salt(), p), { instanceOf: InvalidArgumentError }, JSON.stringify(p));
  t.throws(() => hardenPassword("", salt(), TEST_SCRYPT), { instanceOf: InvalidArgumentError });
  t.throws(() => hardenPassword("pw", new Uint8Array(15), TEST_SCRYPT), { instanceOf: InvalidLengthError });
});

test("keys derived from y are deterministic, distinct, and the reset key pair matches", (t) => {
  const y = randomKey();
  const a = deriveKeys(y);
  const b = deriveKeys(y);
  t.is(hex(a.encKey), hex(b.encKey));
  t.is(a.resetPrivateKey, b.resetPrivateKey);
  t.true(decodePoint(a.resetPublicKey).equals(G.multiply(a.resetPrivateKey)));
  t.not(hex(deriveKeys(randomKey()).encKey), hex(a.encKey));
  t.throws(() => deriveKeys(new Uint8Array(31)), { instanceOf: InvalidLengthError });
});

test("the backup key ciphertext round-trips and is bound to user and version", (t) => {
  const key = randomKey();
  const backup = randomKey();
  const c = encryptBackupKey(key, backup, "alice", 3);
  t.is(c.length, CIPHERTEXT_LENGTH);
  t.is(hex(decryptBackupKey(key, c, "alice", 3) ?? new Uint8Array()), hex(backup));
  t.is(decryptBackupKey(key, c, "alicf", 3), null);
  t.is(decryptBackupKey(key, c, "alice", 4), null);
  t.is(decryptBackupKey(randomKey(), c, "alice", 3), null);
  const tampered = c.slice();
  tampered[20] = (tampered[20] ?? 0) ^ 1;
  t.is(decryptBackupKey(key, tampered, "alice", 3), null);
});

test("malformed ciphertexts and keys fail with specific errors", (t) => {
  const key = randomKey();
  const c = encryptBackupKey(key, randomKey(), "alice", 1);
  const v2 = c.slice();
  v2[0] = 2;
  t.throws(() => decryptBackupKey(key, v2, "alice", 1), { instanceOf: UnsupportedVersionError });
  t.throws(() => decryptBackupKey(key, c.subarray(1), "alice", 1), { instanceOf: InvalidLengthError });
  t.throws(() => encryptBackupKey(key, new Uint8Array(31), "alice", 1), { instanceOf: InvalidLengthError });
  t.throws(() => encryptBackupKey(new Uint8Array(16), randomKey(), "alice", 1), { instanceOf: InvalidLengthError });
  t.throws(() => encryptBackupKey(key, randomKey(), "", 1), { instanceOf: InvalidArgumentError });
  t.throws(() => encryptBackupKey(key, randomKey(), "alice", 0), { instanceOf: InvalidArgumentError });
});

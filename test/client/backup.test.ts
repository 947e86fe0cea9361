// Backup-file format: byte-for-byte round trips and every tampering refused
// with its specific error and no output (nor temporary file) left behind.
import test from "ava";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import {
  BackupFormatError, BackupIntegrityError, BackupKeyError, DecryptStream, EncryptStream, HEADER_LENGTH, type IntegrityPart, TAG_LENGTH,
  decryptFile, encryptFile,
} from "../../client/backup/index.js";
import { ClientError } from "../../client/sdk/errors.js";

const C = 64 * 1024;
const SEALED = C + TAG_LENGTH;

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "bkv-backup-"));
}

const key = () => new Uint8Array(randomBytes(32));

async function roundTrip(size: number, chunkSize?: number): Promise<{ plain: Buffer; back: Buffer; sealedSize: number }> {
  const dir = await tempDir();
  try {
    const k = key();
    const plain = randomBytes(size);
    await writeFile(join(dir, "in"), plain);
    await encryptFile(k, join(dir, "in"), join(dir, "enc"), chunkSize === undefined ? {} : { chunkSize });
    await decryptFile(k, join(dir, "enc"), join(dir, "out"));
    const sealedSize = (await readFile(join(dir, "enc"))).length;
    return { plain, back: await readFile(join(dir, "out")), sealedSize };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

for (const [name, size] of [
  ["an empty file", 0], ["1 byte", 1], ["exactly one chunk", C], ["one chunk less one byte", C - 1],
  ["many chunks and a partial one", 5 * C + 1234],
] as const) {
  test(`round trip: ${name}`, async (t) => {
    const { plain, back, sealedSize } = await roundTrip(size);
    t.true(plain.equals(back));
    const full = Math.floor(size / C);
    t.is(sealedSize, HEADER_LENGTH + full * SEALED + (size - full * C) + TAG_LENGTH, "full chunks, then one short final chunk");
  });
}

test("round trip: ~20 MiB", async (t) => {
  const { plain, back } = await roundTrip(20 * 1024 * 1024 + 77);
  t.true(plain.equals(back));
});

test("round trip with a small chunk size", async (t) => {
  const { plain, back, sealedSize } = await roundTrip(10_000, 1024);
  t.true(plain.equals(back));
  t.is(sealedSize, HEADER_LENGTH + 9 * (1024 + TAG_LENGTH) + (10_000 - 9 * 1024) + TAG_LENGTH);
});

test("two encryptions of the same file differ (random salt)", async (t) => {
  const k = key();
  const seal = async () => {
    const enc = new EncryptStream(k);
    const out: Buffer[] = [];
    enc.on("data", (b: Buffer) => out.push(b));
    enc.end(Buffer.from("same"));
    await new Promise((r) => enc.on("end", r));
    return Buffer.concat(out);
  };
  t.false((await seal()).equals(await seal()));
});

/** An encrypted file of 3 full chunks plus a partial one, and the key. */
async function sealedFixture(dir: string, size = 3 * C + 500): Promise<{ k: Uint8Array; sealed: Buffer }> {
  const k = key();
  await writeFile(join(dir, "in"), randomBytes(size));
  await encryptFile(k, join(dir, "in"), join(dir, "enc"));
  return { k, sealed: await readFile(join(dir, "enc")) };
}

const chunkAt = (i: number) => HEADER_LENGTH + i * SEALED;

/** Decrypts `tampered` and returns the error; asserts no output and no temp file remain. */
async function refused(t: import("ava").ExecutionContext, tamper: (sealed: Buffer) => Buffer, k?: Uint8Array, size?: number): Promise<Error> {
  const dir = await tempDir();
  try {
    const fx = await sealedFixture(dir, size);
    await writeFile(join(dir, "bad"), tamper(Buffer.from(fx.sealed)));
    const err = await t.throwsAsync(decryptFile(k ?? fx.k, join(dir, "bad"), join(dir, "out")));
    t.deepEqual((await readdir(dir)).sort(), ["bad", "enc", "in"], "no output and no temporary file left");
    return err as Error;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function integrity(t: import("ava").ExecutionContext, err: Error, part: IntegrityPart, index?: number): void {
  t.true(err instanceof BackupIntegrityError, err.message);
  t.is((err as BackupIntegrityError).part, part);
  if (index !== undefined) t.is((err as BackupIntegrityError).chunkIndex, index);
}

test("truncation at a chunk boundary (final chunk dropped) is refused", async (t) => {
  integrity(t, await refused(t, (s) => s.subarray(0, chunkAt(3))), "truncated", 3);
});

test("truncation at an earlier chunk boundary is refused", async (t) => {
  integrity(t, await refused(t, (s) => s.subarray(0, chunkAt(1))), "truncated", 1);
});

test("dropping the empty final chunk of an exact-multiple file is refused", async (t) => {
  integrity(t, await refused(t, (s) => s.subarray(0, s.length - TAG_LENGTH), undefined, 2 * C), "truncated", 2);
});

test("truncation inside a chunk is refused", async (t) => {
  integrity(t, await refused(t, (s) => s.subarray(0, chunkAt(2) + 1000)), "final-chunk", 2);
  integrity(t, await refused(t, (s) => s.subarray(0, chunkAt(2) + 5)), "truncated", 2);
  integrity(t, await refused(t, (s) => s.subarray(0, s.length - 1)), "final-chunk", 3);
});

test("a flipped bit in a chunk is refused", async (t) => {
  integrity(t, await refused(t, (s) => {
    s[chunkAt(1) + 100] = (s[chunkAt(1) + 100] ?? 0) ^ 0x01;
    return s;
  }), "chunk", 1);
});

test("a flipped bit in the final chunk's tag is refused", async (t) => {
  integrity(t, await refused(t, (s) => {
    s[s.length - 1] = (s[s.length - 1] ?? 0) ^ 0x80;
    return s;
  }), "final-chunk", 3);
});

test("swapped chunks are refused", async (t) => {
  integrity(t, await refused(t, (s) => Buffer.concat([
    s.subarray(0, chunkAt(0)), s.subarray(chunkAt(1), chunkAt(2)), s.subarray(chunkAt(0), chunkAt(1)), s.subarray(chunkAt(2)),
  ])), "chunk", 0);
});

test("a duplicated chunk is refused", async (t) => {
  integrity(t, await refused(t, (s) => Buffer.concat([s.subarray(0, chunkAt(1)), s.subarray(chunkAt(0), chunkAt(1)), s.subarray(chunkAt(1))])), "chunk", 1);
});

test("a final chunk moved into a non-final place is refused", async (t) => {
  // Drop chunk 2 so that chunk 3 (final, sealed with the final flag) arrives as index 2.
  integrity(t, await refused(t, (s) => Buffer.concat([s.subarray(0, chunkAt(2)), s.subarray(chunkAt(3))])), "final-chunk", 2);
});

test("appended bytes are refused", async (t) => {
  integrity(t, await refused(t, (s) => Buffer.concat([s, randomBytes(SEALED)])), "chunk", 3);
});

test("an altered header is refused", async (t) => {
  // chunk size field (bytes 8-11): 65536 -> 32768
  integrity(t, await refused(t, (s) => {
    s.writeUInt32BE(32 * 1024, 8);
    return s;
  }), "header");
  // header tag
  integrity(t, await refused(t, (s) => {
    s[HEADER_LENGTH - 1] = (s[HEADER_LENGTH - 1] ?? 0) ^ 1;
    return s;
  }), "header");
  const reserved = await refused(t, (s) => {
    s[7] = 1;
    return s;
  });
  t.true(reserved instanceof BackupFormatError);
  const magic = await refused(t, (s) => {
    s[0] = 0x41;
    return s;
  });
  t.true(magic instanceof BackupFormatError);
  t.regex(magic.message, /not a bkv backup/);
  const version = await refused(t, (s) => {
    s[4] = 2;
    return s;
  });
  t.regex(version.message, /unsupported backup format version 2/);
});

test("an altered salt reads as a wrong key", async (t) => {
  const err = await refused(t, (s) => {
    s[20] = (s[20] ?? 0) ^ 1;
    return s;
  });
  t.true(err instanceof BackupKeyError);
});

test("the wrong key is refused before any chunk is opened", async (t) => {
  const err = await refused(t, (s) => s, key());
  t.true(err instanceof BackupKeyError);
  t.regex(err.message, /does not open this file/);
});

test("a file shorter than a header is refused", async (t) => {
  t.true(await refused(t, (s) => s.subarray(0, 40)) instanceof BackupFormatError);
  t.true(await refused(t, () => Buffer.alloc(0)) instanceof BackupFormatError);
});

test("a malformed key is refused", (t) => {
  t.throws(() => new EncryptStream(new Uint8Array(31)), { instanceOf: BackupKeyError });
});

test("an existing output is not replaced unless asked, and input = output is refused", async (t) => {
  const dir = await tempDir();
  try {
    const k = key();
    await writeFile(join(dir, "in"), "hello");
    await writeFile(join(dir, "enc"), "keep me");
    await t.throwsAsync(encryptFile(k, join(dir, "in"), join(dir, "enc")), { instanceOf: ClientError, message: /exists/ });
    t.is(await readFile(join(dir, "enc"), "utf8"), "keep me");
    await encryptFile(k, join(dir, "in"), join(dir, "enc"), { overwrite: true });
    await t.throwsAsync(decryptFile(k, join(dir, "enc"), join(dir, "enc")), { message: /same file/ });
    await t.throwsAsync(encryptFile(k, join(dir, "missing"), join(dir, "x")), { message: /cannot read/ });
    await decryptFile(k, join(dir, "enc"), join(dir, "out"));
    t.is(await readFile(join(dir, "out"), "utf8"), "hello");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the decrypt stream releases authenticated chunks in constant-size pieces", async (t) => {
  const k = key();
  const plain = randomBytes(4 * C + 10);
  const enc = new EncryptStream(k);
  const dec = new DecryptStream(k);
  const pieces: Buffer[] = [];
  dec.on("data", (b: Buffer) => pieces.push(b));
  const src = new PassThrough();
  src.pipe(enc).pipe(dec);
  // Feed in odd-sized slices to exercise buffering across chunk boundaries.
  for (let i = 0; i < plain.length; i += 7777) src.write(plain.subarray(i, i + 7777));
  src.end();
  await new Promise((r) => dec.on("end", r));
  t.true(Buffer.concat(pieces).equals(plain));
  t.true(pieces.every((p) => p.length <= C));
});

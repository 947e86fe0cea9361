import test from "ava";
import { InvalidArgumentError, InvalidEncodingError, Reader, Writer } from "../../proto/crypto/index.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

test("one codec, the byte order chosen per format", (t) => {
  const write = (w: Writer) => w.u8(1).u16(0x0203).u32(0x0405_0607).u64(0x0809_0a0b_0c0dn).bytes();
  t.is(hex(write(new Writer())), "01" + "0203" + "04050607" + "000008090a0b0c0d");
  t.is(hex(write(new Writer("little-endian"))), "01" + "0302" + "07060504" + "0d0c0b0a09080000");
  for (const order of ["big-endian", "little-endian"] as const) {
    const r = new Reader(write(new Writer(order)), "probe", order);
    t.deepEqual([r.u8(), r.u16(), r.u32(), r.u64()], [1, 0x0203, 0x0405_0607, 0x0809_0a0b_0c0dn]);
    r.end();
  }
});

test("a Writer grows, and bytes() already taken never change", (t) => {
  const w = new Writer("big-endian", 1).u32(0xdead_beef);
  const first = w.bytes();
  w.fixed(new Uint8Array(100).fill(7)).u8(9);
  t.is(hex(first), "deadbeef");
  const all = w.bytes();
  t.is(all.length, 105);
  t.is(hex(all.subarray(0, 4)), "deadbeef");
  t.is(all[104], 9);
});

test("a Writer over a reused buffer returns only what it wrote", (t) => {
  const dirty = new Uint8Array(16).fill(0xff);
  t.is(hex(new Writer("little-endian", dirty).u16(1).bytes()), "0100");
});

test("values that do not fit are refused on both sides", (t) => {
  t.throws(() => new Writer().u8(256), { instanceOf: InvalidArgumentError });
  t.throws(() => new Writer().u32(-1), { instanceOf: InvalidArgumentError });
  t.throws(() => new Writer().u64(2 ** 53), { instanceOf: InvalidArgumentError });
  t.throws(() => new Writer().u64(1n << 64n), { instanceOf: InvalidArgumentError });
  const big = new Writer("little-endian").u64(1n << 53n).bytes();
  t.throws(() => new Reader(big, "a counter", "little-endian").safeU64(), { instanceOf: InvalidEncodingError, message: /a counter .*2\^53/ });
  t.is(new Reader(new Writer().u64(2 ** 53 - 1).bytes(), "x").safeU64(), 2 ** 53 - 1);
  t.throws(() => new Reader(Uint8Array.of(1), "a header").u16(), { instanceOf: InvalidEncodingError, message: "a header is truncated" });
});

test("fixed() copies, even out of a Node Buffer", (t) => {
  const src = Buffer.from("0102", "hex");
  const got = new Reader(src, "x").fixed(2);
  src[0] = 9;
  t.is(hex(got), "0102");
  t.false(Buffer.isBuffer(got));
});

import test from "ava";
import { crc32c } from "../../node/storage/crc32c.js";

test("crc32c matches the standard check value and the RFC 3720 vectors", (t) => {
  t.is(crc32c(Buffer.from("123456789")), 0xe3069283);
  t.is(crc32c(new Uint8Array(0)), 0);
  t.is(crc32c(new Uint8Array(32)), 0x8a9136aa);
  t.is(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  t.is(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  t.is(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
});

test("crc32c can be computed incrementally and detects a single flipped bit", (t) => {
  const buf = Uint8Array.from({ length: 1000 }, (_, i) => (i * 13) & 0xff);
  const whole = crc32c(buf);
  for (const cut of [0, 1, 7, 8, 9, 500, 999, 1000]) {
    t.is(crc32c(buf.subarray(cut), crc32c(buf.subarray(0, cut))), whole);
  }
  const flipped = buf.slice();
  flipped[123]! ^= 0x10;
  t.not(crc32c(flipped), whole);
});

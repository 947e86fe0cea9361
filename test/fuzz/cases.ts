// fast-check arbitraries for hostile requests, derived from the schema (a
// field added to a .proto is fuzzed without touching this file):
// - arbitrary bytes;
// - structure-aware bodies: every field of the request type written with
//   its own wire type and an "interesting" value (invalid, identity and
//   valid points, empty and oversized bytes, t > n, limits 0 and 256,
//   unknown node ids, huge repeated fields, the fuzz user's id), then
//   optionally mutated at the byte level (truncated, a byte flipped or
//   inserted, a length broken, an unknown field or a wire type 7 appended);
// - peer streams (as node `from`, with its certificate): a valid header
//   then batches of Raft messages with stale terms, garbage frames,
//   malformed messages, each batch possibly replayed and reordered.
import fc from "fast-check";
import { ScalarType, create, toBinary, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { G, encodePoint, randomScalar } from "../../proto/crypto/index.js";
import { RaftMessageSchema, StreamRequestSchema, type RaftMessage } from "../../proto/gen/bkv/v1/raft_pb.js";
import { REQUEST_METHODS, type RequestMethod } from "../security/raw.js";

export type FuzzCase =
  | { readonly kind: "request"; readonly method: RequestMethod; readonly node: number; readonly body: Uint8Array }
  | { readonly kind: "peer"; readonly node: number; readonly frames: readonly Uint8Array[] };

export interface FuzzWorld {
  /** Node ids of the running cluster. */
  readonly nodes: readonly number[];
  readonly clusterId: string;
  /** A user registered before the run (so that recovery paths are reached). */
  readonly user: string;
  /** Peer messages carry terms in 1..staleTerm (all below the cluster's term: replays). */
  readonly staleTerm: number;
  /** The node whose certificate the peer streams present. */
  readonly peerAs: number;
}

const POINT = encodePoint(G.multiply(randomScalar()));
const BYTES_POOL: readonly Uint8Array[] = [
  new Uint8Array(0), new Uint8Array(1), new Uint8Array(16).fill(7), new Uint8Array(32).fill(9), POINT,
  Uint8Array.of(0x02, ...new Uint8Array(32).fill(0xff)), // x >= p: not a point
  new Uint8Array(33), // the identity's 33-byte "encoding"
  Uint8Array.of(0x04, ...new Uint8Array(64).fill(1)), // uncompressed, off the curve
  new Uint8Array(64).fill(3), new Uint8Array(4096).fill(0xaa),
];
const UINT32_POOL = [0, 1, 2, 3, 4, 5, 10, 255, 256, 65_536, 0x7fffffff, 0xffffffff];
const UINT64_POOL = [0n, 1n, 2n, 3n, 4n, 99n, 1000n, (1n << 53n) - 1n, 1n << 53n, (1n << 64n) - 1n];

function stringPool(world: FuzzWorld): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom("", world.user, "nobody", "a".repeat(300), "é\u0000\u202e", world.clusterId, "127.0.0.1:1", "not an address"),
    fc.string({ maxLength: 40 }),
  );
}

/** One field (tag and value) of a scalar type, with a value of that type. */
function scalarField(f: DescField, t: ScalarType, world: FuzzWorld): fc.Arbitrary<(w: BinaryWriter) => void> {
  const tag = (w: BinaryWriter, wt: WireType) => w.tag(f.number, wt);
  switch (t) {
    case ScalarType.STRING:
      return stringPool(world).map((s) => (w) => tag(w, WireType.LengthDelimited).string(s));
    case ScalarType.BYTES:
      return fc.oneof(fc.constantFrom(...BYTES_POOL), fc.uint8Array({ maxLength: 70 })).map((b) => (w) => tag(w, WireType.LengthDelimited).bytes(b));
    case ScalarType.BOOL:
      return fc.boolean().map((b) => (w) => tag(w, WireType.Varint).bool(b));
    case ScalarType.UINT64: case ScalarType.INT64: case ScalarType.FIXED64:
      return fc.oneof(fc.constantFrom(...UINT64_POOL), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })).map((v) => (w) => {
        if (t === ScalarType.FIXED64) tag(w, WireType.Bit64).fixed64(v);
        else tag(w, WireType.Varint).uint64(v);
      });
    default:
      return fc.oneof(fc.constantFrom(...UINT32_POOL), fc.nat()).map((v) => (w) => tag(w, WireType.Varint).uint32(v));
  }
}

/** A message's fields, each present or not, each with an interesting value; `depth` bounds nesting. */
export function messageBody(desc: DescMessage, world: FuzzWorld, depth = 0): fc.Arbitrary<Uint8Array> {
  const fields = desc.fields.map((f) => fc.option(fieldArb(f, world, depth), { freq: 3 }));
  return fc.tuple(...fields).map((writes) => {
    const w = new BinaryWriter();
    for (const write of writes) write?.(w);
    return w.finish();
  });
}

function fieldArb(f: DescField, world: FuzzWorld, depth: number): fc.Arbitrary<(w: BinaryWriter) => void> {
  const sub = (m: DescMessage) => (depth > 3 ? fc.constant(new Uint8Array(0)) : messageBody(m, world, depth + 1));
  const lenField = (b: Uint8Array) => (w: BinaryWriter) => w.tag(f.number, WireType.LengthDelimited).bytes(b);
  switch (f.fieldKind) {
    case "scalar":
      return scalarField(f, f.scalar, world);
    case "enum":
      return scalarField(f, ScalarType.UINT32, world);
    case "message":
      return sub(f.message).map(lenField);
    case "map":
      return fc.constant(() => undefined);
    case "list": {
      const one = f.listKind === "message" ? sub(f.message).map(lenField) : scalarField(f, f.listKind === "enum" ? ScalarType.UINT32 : f.scalar, world);
      const huge = one.chain((x) => fc.integer({ min: 200, max: 3000 }).map((n) => Array<typeof x>(n).fill(x)));
      return fc.oneof({ weight: 5, arbitrary: fc.array(one, { maxLength: 5 }) }, { weight: 1, arbitrary: huge })
        .map((xs) => (w: BinaryWriter) => { for (const x of xs) x(w); });
    }
  }
}

/** A byte-level mutation of a (structured) body. */
const mutation: fc.Arbitrary<(b: Uint8Array) => Uint8Array> = fc.tuple(fc.nat(9), fc.nat(), fc.nat(255)).map(([kind, at, byte]) => (b) => {
  const i = b.length === 0 ? 0 : at % b.length;
  const out = Uint8Array.from(b);
  switch (kind) {
    case 0: return b.subarray(0, i); // truncated
    case 1: out[i] = (out[i] ?? 0) ^ (1 << (byte % 8)); return out; // a bit flipped (a length, a tag, a value)
    case 2: return Buffer.concat([b.subarray(0, i), Uint8Array.of(byte), b.subarray(i)]); // a byte inserted
    case 3: out[i] = 0xff; return out; // a length or varint made long
    case 4: return Buffer.concat([b, Uint8Array.of(0xa2, 0x06, 0x00)]); // an unknown field 100
    case 5: return Buffer.concat([b, Uint8Array.of(0x0f)]); // wire type 7
    default: return b; // the structured body as is
  }
});

function unaryCase(world: FuzzWorld): fc.Arbitrary<FuzzCase> {
  const node = fc.constantFrom(...world.nodes);
  const method = fc.constantFrom(...REQUEST_METHODS);
  const body = (m: RequestMethod) => fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
    { weight: 3, arbitrary: fc.tuple(messageBody(m.input, world), mutation).map(([b, mutate]) => mutate(b)) },
  );
  return fc.tuple(method, node).chain(([m, n]) => body(m).map((b): FuzzCase => ({ kind: "request", method: m, node: n, body: b })));
}

const WIRE_TYPES = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];

/** A Raft message as node `from` could have sent it in an earlier term (or a malformed one). */
function staleMessage(world: FuzzWorld, to: number): fc.Arbitrary<RaftMessage> {
  const u = (max: number) => fc.integer({ min: 0, max }).map(BigInt);
  return fc.record({
    type: fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...WIRE_TYPES) }, { weight: 1, arbitrary: fc.nat(40) }),
    from: fc.oneof({ weight: 9, arbitrary: fc.constant(BigInt(world.peerAs)) }, { weight: 1, arbitrary: fc.constantFrom(...UINT64_POOL) }),
    to: fc.oneof({ weight: 9, arbitrary: fc.constant(BigInt(to)) }, { weight: 1, arbitrary: fc.constantFrom(...UINT64_POOL) }),
    term: fc.integer({ min: 1, max: world.staleTerm }).map(BigInt),
    logTerm: u(world.staleTerm), index: u(50), commit: u(50), reject: fc.boolean(), rejectHint: u(50),
    entries: fc.array(fc.record({ term: u(world.staleTerm), index: u(50), type: fc.nat(3), data: fc.uint8Array({ maxLength: 40 }) }), { maxLength: 3 }),
    context: fc.uint8Array({ maxLength: 8 }),
  }).map((m) => create(RaftMessageSchema, m));
}

function peerCase(world: FuzzWorld): fc.Arbitrary<FuzzCase> {
  return fc.constantFrom(...world.nodes.filter((n) => n !== world.peerAs)).chain((to) => {
    const header = toBinary(StreamRequestSchema, create(StreamRequestSchema, {
      frame: { case: "header", value: { clusterId: world.clusterId, from: BigInt(world.peerAs), to: BigInt(to) } },
    }));
    const batch = fc.array(staleMessage(world, to), { minLength: 1, maxLength: 6 })
      .map((messages) => toBinary(StreamRequestSchema, create(StreamRequestSchema, { frame: { case: "batch", value: { messages } } })));
    const frame = fc.oneof(
      { weight: 6, arbitrary: batch },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
      { weight: 2, arbitrary: fc.tuple(batch, mutation).map(([b, mutate]) => mutate(b)) },
    );
    // Replayed (each frame possibly sent twice) and reordered.
    return fc.tuple(fc.array(frame, { minLength: 1, maxLength: 5 }), fc.boolean(), fc.boolean()).map(([fs, replay, reverse]): FuzzCase => {
      const sent = replay ? [...fs, ...fs] : fs;
      return { kind: "peer", node: to, frames: [header, ...(reverse ? sent.reverse() : sent)] };
    });
  });
}

/** Unary calls on every method, and peer streams, 7 : 1. */
export function fuzzCase(world: FuzzWorld): fc.Arbitrary<FuzzCase> {
  return fc.oneof({ weight: 7, arbitrary: unaryCase(world) }, { weight: 1, arbitrary: peerCase(world) });
}

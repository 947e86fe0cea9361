import test from "ava";
import { ConfChangeType, ErrInvalidConfChange, decodeConfChange, encodeConfChange } from "../../node/raft/index.js";

// Conf changes live in the WAL and in snapshots' logs: their big-endian
// layout (version u8 | type u8 | nodeId u64 | contextLength u32 | context) is fixed.
const GOLDEN = "01" + "01" + "0000000102030405" + "00000002" + "abcd"; // PromoteLearner of node 0x0102030405

test("a conf change keeps its byte layout (golden bytes)", (t) => {
  const cc = { type: ConfChangeType.PromoteLearner, nodeId: 0x01_0203_0405, context: Uint8Array.of(0xab, 0xcd) };
  t.is(Buffer.from(encodeConfChange(cc)).toString("hex"), GOLDEN);
  t.deepEqual(decodeConfChange(Buffer.from(GOLDEN, "hex")), cc);
});

test("a conf change with a short or long context, or a node id above 2^53, is refused", (t) => {
  const bytes = Buffer.from(GOLDEN, "hex");
  t.throws(() => decodeConfChange(bytes.subarray(0, bytes.length - 1)), { instanceOf: ErrInvalidConfChange });
  t.throws(() => decodeConfChange(Buffer.concat([bytes, Buffer.of(0)])), { instanceOf: ErrInvalidConfChange });
  const huge = Buffer.from(bytes);
  huge[2] = 0x01; // node id 2^56 + ...
  t.throws(() => decodeConfChange(huge), { instanceOf: ErrInvalidConfChange });
});

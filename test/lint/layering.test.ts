// The layering rule (lint/layering.js) fails on a wrong import and passes the
// right one: each case lints a one-line file placed, by path, in the layer.
import { join, resolve } from "node:path";
import test from "ava";
import { ESLint } from "eslint";

const ROOT = resolve(import.meta.dirname, "../..");
const eslint = new ESLint({ cwd: ROOT });

/** The bkv/layering messages for `code` linted as if it were the file at repo path `file`. */
async function layeringErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${code}\n`, { filePath: join(ROOT, file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === "bkv/layering").map((m) => m.message);
}

const WRONG: [file: string, code: string, why: RegExp][] = [
  ["client/sdk/probe.ts", `export { VaultStateMachine } from "../../node/vault/index.js";`, /client may import only client, proto/],
  ["client/cli/probe.ts", `export { loadConfig } from "../../node/server/config.js";`, /client may import only/],
  ["node/vault/probe.ts", `export * from "../server/log.js";`, /node\/vault may import only node\/vault, proto\/crypto/],
  ["node/vault/probe.ts", `export { DiskStorage } from "../storage/index.js";`, /node\/vault may import only/],
  ["node/vault/probe.ts", `export const t = import("../transport/index.js");`, /node\/vault may import only/],
  ["node/raft/probe.ts", `export { RaftMessage } from "../../proto/gen/bkv/v1/raft_pb.js";`, /node\/raft may import only node\/raft, proto\/crypto/],
  ["node/raft/probe.ts", `export { Writer } from "../../proto/crypto/bytes.js";`, /through proto\/crypto\/index.ts/],
  ["node/hsm/probe.ts", `export { encodeCommand } from "../vault/index.js";`, /node\/hsm may import only/],
  ["node/storage/probe.ts", `export type { Entry } from "../raft/types.js";`, /through node\/raft\/index.ts/],
  ["node/storage/probe.ts", `export { RaftLoop } from "../server/raft-loop.js";`, /node\/storage may import only/],
  ["node/transport/probe.ts", `export { RaftLog } from "../raft/log.js";`, /through node\/raft\/index.ts/],
  ["node/transport/probe.ts", `export { HsmPool } from "../hsm/index.js";`, /node\/transport may import only/],
  ["node/server/probe.ts", `export { encodeCommand } from "../vault/commands.js";`, /through node\/vault\/index.ts/],
  ["chaos/probe.ts", `export { loadConfig } from "../node/server/config.js";`, /chaos may import only/],
  ["proto/crypto/probe.ts", `export { RawNode } from "../../node/raft/index.js";`, /proto\/crypto may import only proto\/crypto/],
  ["proto/probe.ts", `export { VaultClient } from "../client/sdk/index.js";`, /proto may import only proto/],
];

for (const [file, code, why] of WRONG) {
  test(`refused: ${file}: ${code}`, async (t) => {
    const errors = await layeringErrors(file, code);
    t.is(errors.length, 1, `expected one layering error, got ${JSON.stringify(errors)}`);
    t.regex(errors[0] ?? "", why);
  });
}

const RIGHT: [file: string, code: string][] = [
  ["node/raft/probe.ts", `export { Writer } from "../../proto/crypto/index.js";`],
  ["node/raft/probe.ts", `export type { Entry } from "./types.js";`],
  ["node/storage/probe.ts", `export type { Entry } from "../raft/index.js";`],
  ["node/transport/probe.ts", `export { serviceDefinition } from "../../proto/rpc.js";`],
  ["node/server/probe.ts", `export { DiskStorage } from "../storage/index.js";`],
  ["client/sdk/probe.ts", `export { Writer } from "../../proto/crypto/index.js";`],
  ["chaos/probe.ts", `export { VaultClient } from "../client/sdk/index.js";`],
  ["test/raft/probe.ts", `export { RaftLog } from "../../node/raft/log.js";`],
];

for (const [file, code] of RIGHT) {
  test(`allowed: ${file}: ${code}`, async (t) => {
    t.deepEqual(await layeringErrors(file, code), []);
  });
}

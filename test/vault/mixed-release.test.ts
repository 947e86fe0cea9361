// A node of this release and a node of the release before bound shares
// (f8d6b0c, extracted with git archive) apply the same entries to a state of
// that release: their state digests must stay equal after every entry an
// honest client port proposes, the bound (v2) registration of an SDK that
// came early included (docs/operations.md, "Bound shares"). Found in review:
// the first version remembered another outcome for it, and skipped no token
// check, so the digests parted until the request id left the table.
import test from "ava";
import { execSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomScalar, wrapShare } from "../../proto/crypto/index.js";
import { type IssuerPolicy, VaultStateMachine, encodeCommand } from "../../node/vault/index.js";
import { CLUSTER, NODES, VOTERS, beginCmd, confirmCmd, issuerPolicy, register, registerCmd } from "../../testkit/vault.js";

const ROOT = resolve(import.meta.dirname, "../..");
const BEFORE_BOUND_SHARES = "f8d6b0c";
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

interface Sm { apply(index: number, data: Uint8Array, voters: readonly number[]): { result: unknown }; digest(): Uint8Array }
type SmClass = new (o: { clusterId: string; issuers?: IssuerPolicy; boundSharesOnly?: boolean }) => Sm;

const previous = (async () => {
  const dir = mkdtempSync(join(tmpdir(), "bkv-before-bound-"));
  execSync(`git -C ${JSON.stringify(ROOT)} archive ${BEFORE_BOUND_SHARES} node proto | tar -x -C ${JSON.stringify(dir)}`, { stdio: ["ignore", "ignore", "pipe"] });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  const m = await import(join(dir, "node/vault/index.ts")) as { VaultStateMachine: SmClass };
  return { dir, Old: m.VaultStateMachine };
})();
test.after.always(async () => rmSync((await previous).dir, { recursive: true, force: true }));


function unbound(reg: ReturnType<typeof register>): ReturnType<typeof register> {
  return { ...reg, record: { ...reg.record, shares: reg.record.shares.map((s, i) => ({ ...s, wrappedShare: wrapShare(NODES[i]!.agreementPublicKey, randomScalar()) })) } };
}

async function pair(issuers?: IssuerPolicy) {
  const { Old } = await previous;
  const opts = { clusterId: CLUSTER, ...(issuers === undefined ? {} : { issuers }) };
  const now = new VaultStateMachine({ ...opts, boundSharesOnly: false });
  const before = new Old(opts);
  let index = 1;
  return {
    /** Applies `e` on both; the two results and whether the digests are still equal. */
    apply(e: Uint8Array) {
      index += 1;
      const a = now.apply(index, e, VOTERS).result;
      const b = before.apply(index, e, VOTERS).result;
      return { a, b, same: hex(now.digest()) === hex(before.digest()) };
    },
    same: () => hex(now.digest()) === hex(before.digest()),
  };
}

test("the same digests after unbound and bound registrations, a begin and a confirmation", async (t) => {
  const p = await pair();
  t.true(p.same(), "the same bootstrap");
  const owner = unbound(register("owner"));
  for (const [what, e] of [
    ["an unbound registration", encodeCommand(registerCmd(owner))],
    ["a bound one (an SDK that came early)", encodeCommand(registerCmd(register("early")))],
    ["a begin", encodeCommand(beginCmd("owner"))],
  ] as const) {
    const r = p.apply(e);
    t.deepEqual(r.a, r.b, what);
    t.true(r.same, what);
  }
  const r = p.apply(encodeCommand(confirmCmd(owner, 4)));
  t.deepEqual(r.a, r.b, "a confirmation");
});

test("with issuer keys: a bound registration without a token is remembered alike (no token check: undecodable on both)", async (t) => {
  const p = await pair(issuerPolicy());
  t.true(p.same());
  const r = p.apply(encodeCommand(registerCmd(register("early"))));
  t.deepEqual(r.a, r.b);
  t.true(r.same);
});

// Child-process fixture: opens the HSM of one token directory (SoftHSM reads
// SOFTHSM2_CONF once per process, so one process per token) and answers
// JSON-line requests on stdin:
//   {"id":1,"op":"evaluate","blob":hex,"b":hex,"k":hex} -> {"id":1,"out":hex}
// Errors -> {"id":1,"error":{"code":...,"message":...}}.
//   usage: tsx test/hsm/fixture-token.ts TOKEN_DIR LABEL
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Hsm, HsmError } from "../../node/hsm/index.js";

const [dir, label] = process.argv.slice(2);
if (dir === undefined || label === undefined) throw new Error("usage: fixture-token.ts TOKEN_DIR LABEL");

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: unknown) => Uint8Array.from(Buffer.from(String(h), "hex"));
const send = (msg: object) => process.stdout.write(JSON.stringify(msg) + "\n");

const hsm = await Hsm.open({ tokenLabel: label, pinFile: join(dir, "pin"), softhsmConf: join(dir, "softhsm2.conf") });
send({ id: 0, agreement: hex(hsm.agreementPublicKey), identity: hex(hsm.identityPublicKey) });

for await (const line of createInterface({ input: process.stdin })) {
  const req = JSON.parse(line) as Record<string, unknown>;
  try {
    const out = await hsm.evaluate(bytes(req.blob), bytes(req.b), bytes(req.k));
    send({ id: req.id, out: hex(out) });
  } catch (err) {
    const e = err instanceof HsmError ? { code: err.code, message: err.message } : { code: "?", message: String(err) };
    send({ id: req.id, error: e });
  }
}
hsm.close();

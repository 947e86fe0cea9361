// Token creation, key bootstrap at first start, and opening failures.
import test from "ava";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pkcs11js from "pkcs11js";
import { Hsm, HsmError } from "../../node/hsm/index.js";
import { INIT_TOKEN, createToken, type TestToken } from "../../testkit/hsm.js";

let token: TestToken;

test.before(() => {
  token = createToken("boot");
});

test.after.always(() => token?.remove());

function countTokenKeys(hsm: Hsm): Promise<number> {
  const p11 = hsm.token.p11;
  return hsm.token.withSession((s) => {
    p11.C_FindObjectsInit(s, [{ type: pkcs11js.CKA_TOKEN, value: true }]);
    try {
      return p11.C_FindObjects(s, 100).length;
    } finally {
      p11.C_FindObjectsFinal(s);
    }
  });
}

test.serial("init-token.sh writes 0600 PIN files and keeps an existing token and its PINs", (t) => {
  const pin = readFileSync(join(token.dir, "pin"), "utf8");
  t.regex(pin, /^[0-9a-f]{32}$/);
  for (const f of ["pin", "so-pin", "softhsm2.conf"]) t.is(statSync(join(token.dir, f)).mode & 0o777, 0o600, f);
  t.notRegex(readFileSync(join(token.dir, "softhsm2.conf"), "utf8"), /pin/i);
  const out = execFileSync("bash", [INIT_TOKEN, token.dir, "boot"]).toString();
  t.regex(out, /already present/);
  t.false(out.includes(pin), "the script never prints the PIN");
  t.is(readFileSync(join(token.dir, "pin"), "utf8"), pin);
});

test.serial("first open creates both key pairs; a second open finds the same keys", async (t) => {
  const first = await Hsm.open(token.config);
  const agreement = Buffer.from(first.agreementPublicKey);
  const identity = Buffer.from(first.identityPublicKey);
  t.is(agreement.length, 65);
  t.is(agreement[0], 0x04);
  t.false(agreement.equals(identity));
  t.is(await countTokenKeys(first), 4);
  t.true(first.keysGenerated);
  first.close();

  const second = await Hsm.open(token.config);
  try {
    t.deepEqual(Buffer.from(second.agreementPublicKey), agreement);
    t.deepEqual(Buffer.from(second.identityPublicKey), identity);
    t.is(await countTokenKeys(second), 4, "no new key objects on the second start");
    t.false(second.keysGenerated, "the second open found them");
  } finally {
    second.close();
  }
});

test.serial("no key material, not even a public key, is stored in plaintext in the token directory", async (t) => {
  const hsm = await Hsm.open(token.config);
  const needles = [hsm.agreementPublicKey, hsm.identityPublicKey].map((k) => Buffer.from(k.subarray(1, 33)));
  hsm.close();
  const files = readdirSync(join(token.dir, "tokens"), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  t.true(files.length >= 4);
  for (const f of files) {
    const data = readFileSync(join(f.parentPath, f.name));
    for (const n of needles) t.false(data.includes(n), `${f.name} holds a key in plaintext`);
  }
});

test.serial("the PIN can come from an environment variable", async (t) => {
  process.env.BKV_TEST_PIN = readFileSync(join(token.dir, "pin"), "utf8");
  const { pinFile: _pinFile, ...rest } = token.config;
  const hsm = await Hsm.open({ ...rest, pinEnv: "BKV_TEST_PIN" });
  t.is(hsm.agreementPublicKey.length, 65);
  hsm.close();
  delete process.env.BKV_TEST_PIN;
});

test.serial("a wrong PIN fails with PIN_INCORRECT and the message does not contain it", async (t) => {
  const wrong = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
  const pinFile = join(token.dir, "wrong-pin");
  writeFileSync(pinFile, wrong, { mode: 0o600 });
  const err = await t.throwsAsync(Hsm.open({ ...token.config, pinFile }), { instanceOf: HsmError });
  t.is(err?.code, "PIN_INCORRECT");
  t.false(err?.message.includes(wrong));
  t.false(err?.stack?.includes(wrong));
  t.false(JSON.stringify(err).includes(wrong));
  // the token still opens with the right PIN afterwards
  const hsm = await Hsm.open(token.config);
  hsm.close();
});

test.serial("configuration errors are typed", async (t) => {
  const code = async (p: Promise<unknown>) => (await t.throwsAsync(p, { instanceOf: HsmError }))?.code;
  t.is(await code(Hsm.open({ ...token.config, tokenLabel: "no-such-token" })), "TOKEN_NOT_FOUND");
  t.is(await code(Hsm.open({ ...token.config, pinFile: join(token.dir, "missing") })), "CONFIG_INVALID");
  t.is(await code(Hsm.open({ ...token.config, pinEnv: "BKV_X" })), "CONFIG_INVALID"); // both sources
  t.is(await code(Hsm.open({ ...token.config, tokenLabel: "" })), "CONFIG_INVALID");
  t.is(await code(Hsm.open({ ...token.config, modulePath: "/nonexistent/libpkcs11.so" })), "MODULE_LOAD_FAILED");
});

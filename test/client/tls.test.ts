// The descriptor's tls.ca: the client speaks TLS to nodes whose certificate
// chains to that CA (certificates from deploy/certs/make-certs.sh).
import test from "ava";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnavailableError, VaultClient } from "../../client/sdk/index.js";
import { FakeCluster, TEST_SCRYPT, makeFakeTls } from "./fake-cluster.js";

const FAST = { scrypt: TEST_SCRYPT, retry: { deadlineMs: 1_500, callTimeoutMs: 1_000, baseDelayMs: 5, maxDelayMs: 50 } };

test("register and recover over TLS; another CA or plaintext is refused", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "bkv-tls-"));
  const tls = await makeFakeTls(join(dir, "a"));
  const otherCa = (await makeFakeTls(join(dir, "b"))).ca;
  const cluster = await FakeCluster.start(3, 2, "tls-cluster", tls);
  const good = new VaultClient(cluster.descriptor(), FAST);
  const wrongCa = new VaultClient({ ...cluster.descriptor(), tlsCa: otherCa }, FAST);
  const plaintext = new VaultClient({ ...cluster.descriptor(), tlsCa: undefined }, FAST);
  try {
    const key = await good.register("tess", "pw");
    t.deepEqual(await good.recover("tess", "pw"), key);
    await t.throwsAsync(wrongCa.recover("tess", "pw"), { instanceOf: UnavailableError });
    await t.throwsAsync(plaintext.recover("tess", "pw"), { instanceOf: UnavailableError });
    t.is(cluster.records.get("tess")?.attempts, 0, "the refused clients spent no attempt");
  } finally {
    good.close();
    wrongCa.close();
    plaintext.close();
    cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

// A data dir records whose it is (node/server/data-dir-identity.ts): another
// node id or cluster is refused; a dir without the record (new, or of an
// earlier release) passes and gets one.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { ConfigError } from "../../node/server/config.js";
import { IDENTITY_FILE, checkDataDirIdentity, recordDataDirIdentity } from "../../node/server/data-dir-identity.js";
import { StorageError } from "../../node/storage/index.js";
import { tempDir } from "../temp.js";

const me = { clusterId: "c1", nodeId: 1 };

test("a dir without a record passes and is recorded once; the same identity passes again", async (t) => {
  const dir = tempDir(t);
  await t.notThrowsAsync(checkDataDirIdentity(dir, me));
  await recordDataDirIdentity(dir, me);
  t.deepEqual(JSON.parse(readFileSync(join(dir, IDENTITY_FILE), "utf8")), me);
  await t.notThrowsAsync(checkDataDirIdentity(dir, me));
  await recordDataDirIdentity(dir, { clusterId: "c1", nodeId: 9 });
  t.deepEqual(JSON.parse(readFileSync(join(dir, IDENTITY_FILE), "utf8")), me, "a record is never replaced");
});

test("another node id or cluster is a ConfigError naming both; a damaged record is a StorageError", async (t) => {
  const dir = tempDir(t);
  await recordDataDirIdentity(dir, me);
  await t.throwsAsync(checkDataDirIdentity(dir, { clusterId: "c1", nodeId: 2 }), {
    instanceOf: ConfigError, message: /^config: dataDir .* holds the data of node 1 of cluster "c1", not of node 2 of cluster "c1": point dataDir \(BKV_DATA_DIR\)/,
  });
  await t.throwsAsync(checkDataDirIdentity(dir, { clusterId: "c2", nodeId: 1 }), { instanceOf: ConfigError, message: /not of node 1 of cluster "c2"/ });
  writeFileSync(join(dir, IDENTITY_FILE), "{");
  await t.throwsAsync(checkDataDirIdentity(dir, me), { instanceOf: StorageError, message: /identity\.json is damaged/ });
});

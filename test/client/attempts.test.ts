// One password, at most one attempt (issue 9 items 2, 4, 5; issue 10 defect
// 3), against the in-process fake cluster: BeginRecovery carries the digest
// of the record read; RECORD_CHANGED re-reads and begins once more (nothing
// was counted); an attempt superseded before t evaluations warns NEW_ATTEMPT
// and begins once more, twice is AttemptSupersededError; a record locked
// under a counted attempt is RecordLockedError, never NotEnoughEvaluations.
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import {
  AttemptSupersededError, NotEnoughEvaluationsError, RecordChangedError, RecordLockedError,
} from "../../client/sdk/index.js";
import { EXIT, exitCodeFor } from "../../client/cli/main.js";
import * as sdkErrors from "../../client/sdk/errors.js";
import { FakeCluster, fail, withCluster } from "./fake-cluster.js";


/** Installs `f` on every node. */
function onAll(cluster: FakeCluster, f: (method: string, req: Record<string, unknown>) => grpc.ServiceError | undefined): void {
  for (const n of cluster.nodes) cluster.fault(n.id, (m, r) => f(m, r as Record<string, unknown>));
}

const distinctIds = (cluster: FakeCluster, method: string) => new Set(cluster.callsOf(method).map((c) => c.requestId)).size;

test.serial("an Evaluate refused because the record locked meanwhile is RecordLockedError, not NotEnoughEvaluationsError (issue 10)", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("lena", "right", { guessLimit: 3 });
    onAll(cluster, (m) => m === "Evaluate" ? fail(grpc.status.FAILED_PRECONDITION, "the record is locked: its guess limit was reached and its shares are destroyed", ErrorReason.RECORD_LOCKED, 0) : undefined);
    const err = await t.throwsAsync(client.checkPassword("lena", "wrong"));
    t.false(err instanceof NotEnoughEvaluationsError, err?.message);
    t.true(err instanceof RecordLockedError, err?.message);
    t.is(exitCodeFor(err, sdkErrors), EXIT.LOCKED);
    t.is(distinctIds(cluster, "BeginRecovery"), 1);
  });
});

test.serial("BeginRecovery carries the digest of the record read; RECORD_CHANGED re-reads and begins once more, no warning", async (t) => {
  await withCluster(async (cluster, client, warnings) => {
    const key = await client.register("rita", "pw");
    const digests: string[] = [];
    let refuse = 1;
    onAll(cluster, (m, r) => {
      if (m !== "BeginRecovery") return undefined;
      digests.push(Buffer.from(r.recordDigest as Uint8Array).toString("hex"));
      if (refuse-- <= 0) return undefined;
      return fail(grpc.status.FAILED_PRECONDITION, "the record of \"rita\" changed since it was read", ErrorReason.RECORD_CHANGED, 10);
    });
    const reads = cluster.callsOf("GetRecordInfo").length;
    t.deepEqual(await client.recover("rita", "pw"), key);
    t.is(digests[0], Buffer.from(cluster.records.get("rita")?.digest ?? []).toString("hex"));
    t.is(distinctIds(cluster, "BeginRecovery"), 2, "a new request id: the refused one counted nothing");
    t.true(cluster.callsOf("GetRecordInfo").length >= reads + 2 * 3, "the record was read again");
    t.deepEqual(warnings, []);
  });
});

test.serial("RECORD_CHANGED twice is RecordChangedError (exit 9), after exactly two begins", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("rob", "pw");
    onAll(cluster, (m) => m === "BeginRecovery" ? fail(grpc.status.FAILED_PRECONDITION, "the record changed since it was read", ErrorReason.RECORD_CHANGED, 10) : undefined);
    const err = await t.throwsAsync(client.recover("rob", "pw"), { instanceOf: RecordChangedError });
    t.is(err?.code, "RECORD_CHANGED");
    t.is(exitCodeFor(err, sdkErrors), EXIT.CONCURRENT);
    t.is(distinctIds(cluster, "BeginRecovery"), 2);
  });
});

test.serial("an attempt superseded before t evaluations: warning NEW_ATTEMPT, then one fresh attempt returns the key", async (t) => {
  await withCluster(async (cluster, client, warnings) => {
    const key = await client.register("sue", "pw");
    let first: bigint | undefined;
    onAll(cluster, (m, r) => {
      if (m !== "Evaluate") return undefined;
      first ??= r.attemptId as bigint;
      if (r.attemptId !== first) return undefined;
      return fail(grpc.status.FAILED_PRECONDITION, `attempt ${first} was superseded by a later confirmation of this record`, ErrorReason.ATTEMPT_SUPERSEDED, 10);
    });
    t.deepEqual(await client.recover("sue", "pw"), key);
    t.deepEqual(warnings.map((w) => w.code), ["NEW_ATTEMPT"]);
    t.regex(warnings[0]?.message ?? "", /superseded.*one fresh attempt/);
    t.is(distinctIds(cluster, "BeginRecovery"), 2);
    t.is(cluster.records.get("sue")?.attempts, 0, "the fresh attempt was confirmed");
  });
});

test.serial("superseded again after NEW_ATTEMPT: AttemptSupersededError that says so (CLI exit 9, not 'cluster unavailable')", async (t) => {
  await withCluster(async (cluster, client, warnings) => {
    await client.register("tom", "pw");
    onAll(cluster, (m, r) => m === "Evaluate"
      ? fail(grpc.status.FAILED_PRECONDITION, `attempt ${String(r.attemptId)} was superseded by a later confirmation of this record`, ErrorReason.ATTEMPT_SUPERSEDED, 10)
      : undefined);
    const err = await t.throwsAsync(client.checkPassword("tom", "pw"), { instanceOf: AttemptSupersededError });
    t.regex(err?.message ?? "", /concurrent recovery.*confirmed first.*superseded too: try again/);
    t.is(exitCodeFor(err, sdkErrors), EXIT.CONCURRENT);
    t.deepEqual(warnings.map((w) => w.code), ["NEW_ATTEMPT"]);
    t.is(distinctIds(cluster, "BeginRecovery"), 2, "never a third attempt");
  });
});

test.serial("a confirmation refused as ATTEMPT_SUPERSEDED after the evaluations: the key is returned with CONFIRM_SUPERSEDED, one attempt", async (t) => {
  await withCluster(async (cluster, client, warnings) => {
    const key = await client.register("uma", "pw");
    onAll(cluster, (m) => m === "ConfirmRecovery" ? fail(grpc.status.FAILED_PRECONDITION, "attempt 9 was superseded by a later confirmation of this record", ErrorReason.ATTEMPT_SUPERSEDED, 10) : undefined);
    t.deepEqual(await client.recover("uma", "pw"), key);
    t.deepEqual(warnings.map((w) => w.code), ["CONFIRM_SUPERSEDED"]);
    t.is(distinctIds(cluster, "BeginRecovery"), 1);
  });
});

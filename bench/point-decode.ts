// The cost of decoding a compressed P-256 point (proto/crypto/group.ts
// decodePoint: OpenSSL's square root, then @noble's on-curve check), which
// every node pays once per BeginRecovery it applies (B) and several times per
// registration (the share commitments and the keys): µs per call on distinct
// points (the cache of recent decodes never hits), "hot" in a tight loop and
// "cold" with the CPU caches overwritten between calls, as on a node that
// applies one entry at a time among other work. For A/B runs, run it in each
// tree in turn: npx tsx bench/point-decode.ts [--points 3000] [--rounds 3]
import { parseArgs } from "node:util";
import { decodePoint } from "../proto/crypto/index.js";
import { distinctPoints, load } from "./drive.js";

const { values } = parseArgs({ options: { points: { type: "string", default: "3000" }, rounds: { type: "string", default: "3" } } });
const POINTS = Number(values.points);
/** Larger than the last-level cache of the machines this runs on: touching it evicts decodePoint's code and data. */
const junk = new Uint8Array(16 * 1024 * 1024);

function evictCaches(): void {
  for (let i = 0; i < junk.length; i += 64) junk[i]!++;
}

/** Mean µs of decodePoint over `points`, with `between` run before each call (outside the timing). */
function meanMicros(points: readonly Uint8Array[], between: () => void): number {
  let ms = 0;
  for (const p of points) {
    between();
    const t0 = performance.now();
    decodePoint(p);
    ms += performance.now() - t0;
  }
  return (ms * 1000) / points.length;
}

decodePoint(distinctPoints(1)[0]!); // the first call loads @noble's tables
for (let round = 1; round <= Number(values.rounds); round++) {
  const hot = meanMicros(distinctPoints(POINTS), () => {});
  const cold = meanMicros(distinctPoints(POINTS), evictCaches);
  console.log(`round ${round}: decodePoint µs per call, hot ${hot.toFixed(1)}, cold ${cold.toFixed(1)} (${POINTS} distinct points each; load ${load()})`);
}

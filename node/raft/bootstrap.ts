// Bootstrapping a new cluster: every initial member applies the same
// snapshot naming the initial voters, so all start with the same
// configuration and a log that begins after index 1 (term 1). A node that
// joins later starts with empty storage and is added with AddLearner.

import type { NodeId, Snapshot } from "./types.js";

export function bootstrapSnapshot(voters: readonly NodeId[], data: Uint8Array = new Uint8Array(0)): Snapshot {
  return {
    metadata: { index: 1, term: 1, confState: { voters: [...voters].sort((a, b) => a - b), learners: [] } },
    data,
  };
}

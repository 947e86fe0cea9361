// A Porcupine-style linearizability search (Wing & Gong, with Lowe's
// memoization of (linearized set, model state)) for one object's history.
//
// Real-time order: op a precedes op b when a.complete < b.invoke; an op can be
// linearized next only if no unlinearized op completed before it was invoked.
// Ops of unknown outcome (`required: false`, complete = Infinity) may take
// effect at any point after their invocation or never: the search succeeds
// once every required op is linearized. `after` chains the sub-steps of one
// composite client operation (BeginRecovery then ConfirmRecovery).

export interface LinOp<S> {
  id: number;
  invoke: number;
  /** Infinity when the outcome is unknown. */
  complete: number;
  /** False for operations that may never have taken effect. */
  required: boolean;
  /** The id of an op that must be linearized before this one. */
  after?: number;
  /** The next state, or null when this op's observed result is impossible from `s`. */
  apply(s: S): S | null;
  label: string;
}

export interface LinModel<S> {
  init: S;
  key(s: S): string;
}

export type LinResult =
  | { status: "ok"; order: number[] }
  | { status: "violation"; longestPrefix: number[]; stuckAt: number[] }
  | { status: "unknown"; explored: number };

class BudgetExceeded extends Error {}

/** Searches for a linearization; `budget` bounds the explored search nodes. */
export function checkLinearizable<S>(model: LinModel<S>, input: readonly LinOp<S>[], budget = 500_000): LinResult {
  const ops = [...input].sort((a, b) => a.invoke - b.invoke || a.id - b.id);
  validateOps(ops);
  const n = ops.length;
  const pos = new Map(ops.map((o, i) => [o.id, i]));
  const done = new Uint8Array(n);
  const order: number[] = [];
  const memo = new Set<string>();
  let requiredLeft = ops.filter((o) => o.required).length;
  let explored = 0;
  let longest: number[] = [];

  const minPendingComplete = (): number => {
    let m = Infinity;
    for (let i = 0; i < n; i++) if (!done[i] && ops[i]!.complete < m) m = ops[i]!.complete;
    return m;
  };

  const dfs = (state: S): boolean => {
    if (requiredLeft === 0) return true;
    const k = `${bitsKey(done)}|${model.key(state)}`;
    if (memo.has(k)) return false;
    memo.add(k);
    if (++explored > budget) throw new BudgetExceeded();
    const limit = minPendingComplete();
    for (let i = 0; i < n && ops[i]!.invoke <= limit; i++) {
      const op = ops[i]!;
      if (done[i] || (op.after !== undefined && !done[pos.get(op.after) ?? -1])) continue;
      const next = op.apply(state);
      if (next === null) continue;
      done[i] = 1;
      order.push(op.id);
      if (op.required) requiredLeft--;
      if (order.length > longest.length) longest = [...order];
      if (dfs(next)) return true;
      done[i] = 0;
      order.pop();
      if (op.required) requiredLeft++;
    }
    return false;
  };

  try {
    if (dfs(model.init)) return { status: "ok", order: [...order] };
  } catch (e) {
    if (e instanceof BudgetExceeded) return { status: "unknown", explored };
    throw e;
  }
  const placed = new Set(longest);
  const stuckAt = ops.filter((o) => o.required && !placed.has(o.id)).slice(0, 5).map((o) => o.id);
  return { status: "violation", longestPrefix: longest, stuckAt };
}

function validateOps<S>(ops: readonly LinOp<S>[]): void {
  const ids = new Set<number>();
  for (const o of ops) {
    if (ids.has(o.id)) throw new Error(`linearizability: duplicate op id ${o.id}`);
    ids.add(o.id);
    if (!(o.complete >= o.invoke)) throw new Error(`linearizability: op ${o.id} completes before it is invoked`);
    if (o.required && o.complete === Infinity) throw new Error(`linearizability: required op ${o.id} has no completion`);
  }
  for (const o of ops) if (o.after !== undefined && !ids.has(o.after)) throw new Error(`linearizability: op ${o.id} chained after unknown op ${o.after}`);
}

function bitsKey(done: Uint8Array): string {
  let s = "";
  for (let i = 0; i < done.length; i += 4) s += ((done[i]! | (done[i + 1]! << 1) | (done[i + 2]! << 2) | (done[i + 3]! << 3)) >>> 0).toString(16);
  return s;
}

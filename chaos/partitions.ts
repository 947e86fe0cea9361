// Partitions as compositions over per-link proxies.
//
// A partition spec says which directed (sender → receiver) deliveries are cut.
// Link a→b is the TCP connection a dials to b: its "forward" direction carries
// a's bytes to b, its "backward" direction b's bytes to a. So "a cannot reach b"
// blocks link a→b forward AND link b→a backward.
import type { LinkProxy } from "./proxy.js";

export type PartitionSpec =
  /** Nodes in different groups cannot talk; nodes not listed are in a group of their own. */
  | { kind: "full"; groups: number[][] }
  /** Messages from `from` to `to` are cut; `to` still reaches `from`. */
  | { kind: "one-way"; from: number[]; to: number[] }
  /** Two halves that only `bridge` connects (the classic Jepsen bridge). */
  | { kind: "bridge"; left: number[]; right: number[]; bridge: number }
  /** One node cut from every other node. */
  | { kind: "isolate"; node: number };

export type LinkKey = `${number}->${number}`;

export function linkKey(from: number, to: number): LinkKey {
  return `${from}->${to}`;
}

/** The set of directed (sender → receiver) pairs that the spec cuts. Throws on ids outside `nodes`. */
export function cutPairs(nodes: readonly number[], spec: PartitionSpec): Set<LinkKey> {
  const known = new Set(nodes);
  const check = (ids: readonly number[]): void => {
    for (const id of ids) if (!known.has(id)) throw new RangeError(`partition names unknown node ${id}`);
  };
  const cut = new Set<LinkKey>();
  const cutBoth = (a: number, b: number): void => {
    cut.add(linkKey(a, b));
    cut.add(linkKey(b, a));
  };
  switch (spec.kind) {
    case "full": {
      spec.groups.forEach(check);
      const groupOf = new Map<number, number>();
      spec.groups.forEach((g, i) => g.forEach((id) => groupOf.set(id, i)));
      for (const a of nodes)
        for (const b of nodes) if (a !== b && (groupOf.get(a) ?? -a - 1) !== (groupOf.get(b) ?? -b - 1)) cut.add(linkKey(a, b));
      break;
    }
    case "one-way":
      check(spec.from);
      check(spec.to);
      for (const a of spec.from) for (const b of spec.to) if (a !== b) cut.add(linkKey(a, b));
      break;
    case "bridge":
      check([...spec.left, ...spec.right, spec.bridge]);
      for (const a of spec.left) for (const b of spec.right) if (a !== spec.bridge && b !== spec.bridge && a !== b) cutBoth(a, b);
      break;
    case "isolate":
      check([spec.node]);
      for (const b of nodes) if (b !== spec.node) cutBoth(spec.node, b);
      break;
  }
  return cut;
}

export interface LinkBlock {
  forward: boolean;
  backward: boolean;
}

/** Per directed link (dialer→target), which directions to blackhole. */
export function linkBlocks(nodes: readonly number[], spec: PartitionSpec): Map<LinkKey, LinkBlock> {
  const cut = cutPairs(nodes, spec);
  const out = new Map<LinkKey, LinkBlock>();
  for (const a of nodes)
    for (const b of nodes) {
      if (a === b) continue;
      out.set(linkKey(a, b), { forward: cut.has(linkKey(a, b)), backward: cut.has(linkKey(b, a)) });
    }
  return out;
}

/** Sets every link's blackhole directions for `spec` (latency and dropNew are kept). */
export function applyPartition(proxies: ReadonlyMap<LinkKey, LinkProxy>, nodes: readonly number[], spec: PartitionSpec): void {
  for (const [key, block] of linkBlocks(nodes, spec)) {
    const proxy = proxies.get(key);
    if (proxy === undefined) throw new Error(`no proxy for link ${key}`);
    const f = proxy.currentFaults();
    proxy.setFaults({ ...f, blocked: { ...block } });
  }
}

/** Clears every fault on every link. */
export function healAll(proxies: ReadonlyMap<LinkKey, LinkProxy>): void {
  for (const p of proxies.values()) p.heal();
}

export function describePartition(spec: PartitionSpec): string {
  switch (spec.kind) {
    case "full":
      return `full ${spec.groups.map((g) => `{${g.join(",")}}`).join(" | ")}`;
    case "one-way":
      return `one-way {${spec.from.join(",")}} -/-> {${spec.to.join(",")}}`;
    case "bridge":
      return `bridge {${spec.left.join(",")}} <-${spec.bridge}-> {${spec.right.join(",")}}`;
    case "isolate":
      return `isolate ${spec.node}`;
  }
}

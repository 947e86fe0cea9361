// @ts-check
// The layering of bkv as an ESLint rule (`bkv/layering`), checked on every
// relative import, re-export and dynamic import() of production code. The
// import resolves to a file; the file's layer and the importer's layer decide:
//
//   proto/crypto            → proto/crypto                       (the ground floor)
//   proto (rpc.ts, gen)     → proto
//   node/raft, node/vault,
//   node/hsm                → proto/crypto                       (pure layers: nothing else of bkv)
//   node/storage,
//   node/transport          → proto, node/raft
//   node/server             → proto, node                        (the only layer that sees them all)
//   client                  → proto, client                      (shares only proto/ with the node)
//   chaos                   → proto, client, chaos               (drives the node through its gRPC API)
//
// A layer always imports its own directory. Another module is imported only
// through its index.ts: proto/crypto, node/raft, node/vault, node/hsm,
// node/storage, node/transport. Tests, benchmarks and deploy scripts may import
// any layer (they exercise it); they are not in the table. docs/architecture.md
// explains the layers.
import { dirname, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");

/** Importer layer → directories it may import from (besides its own). Longest prefix wins. */
export const LAYERS = {
  "proto/crypto": ["proto/crypto"],
  proto: ["proto"],
  "node/raft": ["proto/crypto"],
  "node/vault": ["proto/crypto"],
  "node/hsm": ["proto/crypto"],
  "node/storage": ["proto", "node/raft"],
  "node/transport": ["proto", "node/raft"],
  "node/server": ["proto", "node"],
  client: ["proto", "client"],
  chaos: ["proto", "client", "chaos"],
};

/** Modules that the rest of the code reaches only through their index.ts. */
export const INDEXED = ["proto/crypto", "node/raft", "node/vault", "node/hsm", "node/storage", "node/transport"];

/** Whether repo-relative path p lies in directory dir. */
const within = (p, dir) => p === dir || p.startsWith(`${dir}/`);

/** The longest key of table that contains p, or undefined. */
function layerOf(p, keys) {
  return keys.filter((k) => within(p, k)).sort((a, b) => b.length - a.length)[0];
}

/** Why importing `target` from `importer` (both repo-relative .ts paths) breaks the layering, or undefined. */
export function layeringViolation(importer, target) {
  const layer = layerOf(importer, Object.keys(LAYERS));
  if (layer === undefined) return undefined;
  if (within(target, layer)) return undefined;
  const allowed = LAYERS[layer];
  if (!allowed.some((dir) => within(target, dir))) {
    return `${layer} may import only ${[layer, ...allowed].join(", ")}; not ${target}`;
  }
  const module = layerOf(target, INDEXED);
  if (module !== undefined && !within(importer, module) && target !== `${module}/index.ts`) {
    return `import ${module} through ${module}/index.ts, not ${target}`;
  }
  return undefined;
}

/** @type {import("eslint").Rule.RuleModule} */
const rule = {
  meta: { type: "problem", docs: { description: "enforce the import layering of bkv (lint/layering.js)" }, schema: [] },
  create(context) {
    const importer = relative(ROOT, context.filename);
    const check = (node, source) => {
      if (!source || source.type !== "Literal" || typeof source.value !== "string" || !source.value.startsWith(".")) return;
      const target = relative(ROOT, resolve(dirname(context.filename), source.value)).replace(/\.js$/, ".ts");
      const why = layeringViolation(importer, target);
      if (why !== undefined) context.report({ node, message: `layering: ${why}` });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source),
      ExportNamedDeclaration: (node) => check(node, node.source),
      ExportAllDeclaration: (node) => check(node, node.source),
      ImportExpression: (node) => check(node, node.source),
    };
  },
};

export default { rules: { layering: rule } };

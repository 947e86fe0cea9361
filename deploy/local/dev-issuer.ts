// Creates the local cluster's development token issuer (client/cli/dev-issuer.ts)
// in DIR unless it exists. Used by deploy/local/start.sh.
//   tsx deploy/local/dev-issuer.ts DIR CLUSTER_ID
import { createDevIssuer } from "../../client/cli/dev-issuer.js";

const [dir, clusterId] = process.argv.slice(2);
if (dir === undefined || clusterId === undefined) {
  process.stderr.write("usage: dev-issuer.ts DIR CLUSTER_ID\n");
  process.exit(2);
}
const { jwksFile } = await createDevIssuer(dir, clusterId);
process.stdout.write(`${jwksFile}\n`);

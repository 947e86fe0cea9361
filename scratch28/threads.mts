import fs from "node:fs";
import { LocalCluster } from "../testkit/cluster.js";
const c = await LocalCluster.start({});
await new Promise((r) => setTimeout(r, 3000));
const pid = c.nodes[0]!.proc!.pid!;
for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
  const comm = fs.readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim();
  const stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8").split(") ")[1]!.split(" ");
  console.log(t, comm, "nice", stat[16]);
}
await c.close();

// A client process that allocates through the launcher and then waits to be killed: the
// sweep test SIGKILLs it and checks that the next launcher cancels its job.
// Usage: tsx --conditions=@sremote/source killed-client-child.ts   (SLURM_CONF in the environment)
import { localConnector } from "@sremote/connector-local";
import { slurm } from "../src/index.js";

const launcher = slurm({ nodes: 1, time: 5, env: { SLURM_CONF: process.env.SLURM_CONF ?? "" }, sweep: false });
await launcher.prepare(localConnector(), { timeoutMs: 30_000 });
process.stdout.write(`${JSON.stringify({ ...launcher.job, pid: process.pid })}\n`);
setInterval(() => {}, 60_000);

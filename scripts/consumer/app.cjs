// CommonJS consumer: `require` of the ESM-only packages (require(esm), Node >= 20.19).
const { RemoteClient } = require("@sremote/client");
const { localConnector } = require("@sremote/connector-local");
const { sshConnector } = require("@sremote/connector-ssh");
const { slurm } = require("@sremote/launcher-slurm");

async function main() {
  if (typeof sshConnector !== "function") throw new Error(`sshConnector is ${typeof sshConnector}`);
  if (slurm({ nodes: 2 }).name !== "slurm") throw new Error("@sremote/launcher-slurm did not load");
  const client = new RemoteClient({ connector: localConnector() });
  try {
    const { value } = await client.call("math", "sqrt", [2]);
    if (value !== Math.SQRT2) throw new Error(`math.sqrt(2) gave ${value}`);
    console.log(`math.sqrt(2) = ${value}`);
  } finally {
    await client.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});

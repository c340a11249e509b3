// Type-checked only (tsc --strict --noEmit), once per moduleResolution: the published types
// must let a strict TypeScript user write this.
import { type CallResult, RemoteClient } from "@sremote/client";
import { localConnector } from "@sremote/connector-local";
import { type SshConnectorOptions, sshConnector } from "@sremote/connector-ssh";
import type { Connector } from "@sremote/core";
import { parseSlurmSpec, slurm } from "@sremote/launcher-slurm";

const sshOptions: SshConnectorOptions = { host: "login.example.org", username: "alice" };
const ssh: (options: SshConnectorOptions) => Connector = sshConnector;
void [ssh, sshOptions];
const onComputeNodes = (connector: Connector) =>
  new RemoteClient({ connector, launcher: slurm(parseSlurmSpec("partition=debug,time=5,nodes=2")), poolSize: 2 });
void onComputeNodes;

const client = new RemoteClient({ connector: localConnector() });
try {
  const result: CallResult<number> = await client.call<number>("math", "sqrt", [2]);
  const math = client.module<{ sqrt(x: number): number }>("math");
  const again: number = await math.sqrt(2);
  const untyped: unknown = await client.module("math").sqrt(2);
  console.log(result.value.toFixed(3), again, untyped);
} finally {
  await client.close();
}

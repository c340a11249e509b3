// Type-checked only: a CommonJS TypeScript file importing the ESM-only packages, which
// `module: nodenext` allows since TypeScript 5.8 (require(esm), Node >= 20.19).
import { RemoteClient } from "@sremote/client";
import { localConnector } from "@sremote/connector-local";
import { sshConnector } from "@sremote/connector-ssh";

async function main(): Promise<number> {
  void sshConnector;
  const client = new RemoteClient({ connector: localConnector() });
  try {
    return (await client.call<number>("math", "sqrt", [2])).value;
  } finally {
    await client.close();
  }
}

void main();

// ESM consumer: what a user's `.mjs` file does after `npm i @sremote/client @sremote/connector-local`.
import { RemoteClient } from "@sremote/client";
import { localConnector } from "@sremote/connector-local";
import { sshConnector } from "@sremote/connector-ssh";

if (typeof sshConnector !== "function") throw new Error(`sshConnector is ${typeof sshConnector}`);
const client = new RemoteClient({ connector: localConnector() });
try {
  const { value } = await client.call("math", "sqrt", [2]);
  if (value !== Math.SQRT2) throw new Error(`math.sqrt(2) gave ${value}`);
  console.log(`math.sqrt(2) = ${value}`);
} finally {
  await client.close();
}

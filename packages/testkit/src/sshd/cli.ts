/**
 * Starts a private sshd by hand: `npx tsx packages/testkit/src/sshd/cli.ts [--password]
 * [--max-sessions N] [--max-startups A:B:C] [--user NAME]`. Prints its facts as JSON and an
 * ssh command line, then runs until Ctrl-C (or SIGTERM), when it stops everything it started.
 */
import { parseArgs } from "node:util";
import { startSshd } from "./fixture.js";

const { values } = parseArgs({
  options: {
    password: { type: "boolean", default: false },
    "max-sessions": { type: "string" },
    "max-startups": { type: "string" },
    user: { type: "string" },
  },
});

const sshd = await startSshd({
  password: values.password,
  ...(values["max-sessions"] ? { maxSessions: Number(values["max-sessions"]) } : {}),
  ...(values["max-startups"] ? { maxStartups: values["max-startups"] } : {}),
  ...(values.user ? { user: values.user } : {}),
});
process.stdout.write(`${JSON.stringify(sshd.facts(), null, 2)}\n`);
process.stdout.write(
  `\nssh -i ${sshd.privateKeyPath} -o UserKnownHostsFile=${sshd.knownHostsPath} -p ${sshd.port} ${sshd.user}@${sshd.host}\n` +
    "Ctrl-C stops it.\n",
);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await sshd.stop();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);

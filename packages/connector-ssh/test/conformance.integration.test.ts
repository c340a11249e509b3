import { randomBytes } from "node:crypto";
import { describeConnectorConformance } from "@sremote/testkit";
import { connectorFor, sshd } from "./helpers.js";

// The whole contract, over a real OpenSSH sshd (started by the global setup) as an
// unprivileged account: SFTP files, exec channels, spawn channels, cancellation.
describeConnectorConformance(
  "ssh",
  async () => {
    const facts = sshd();
    const connector = connectorFor(facts);
    const scratchDir = `${facts.home}/conformance-${randomBytes(4).toString("hex")}`;
    await connector.exec(["mkdir", "-p", scratchDir]);
    return {
      connector,
      scratchDir,
      cleanup: async () => {
        const janitor = connectorFor(facts);
        try {
          await janitor.exec(["rm", "-rf", scratchDir]);
        } finally {
          await janitor.close();
        }
      },
    };
  },
  { python: "/usr/bin/python3" },
);

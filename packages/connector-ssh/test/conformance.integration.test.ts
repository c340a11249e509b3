import { randomBytes } from "node:crypto";
import { describeConnectorConformance } from "@sremote/testkit";
import { vi } from "vitest";
import { connectorFor, describeSsh, sshd } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The whole contract, over a real OpenSSH sshd (started by the global setup) as an
// unprivileged account: SFTP files, exec channels, spawn channels, cancellation.
describeSsh("ssh connector conformance", () =>
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
  ),
);

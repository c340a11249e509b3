import { randomBytes } from "node:crypto";
import { describeConnectorConformance } from "@sremote/testkit";
import { type SshdFixture, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, vi } from "vitest";
import { connectorFor, describeSsh } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The whole contract over the system OpenSSH client, logging in the way NERSC's sshproxy
// users do: the account has no authorized_keys, a user CA signed the key, and `ssh` picks
// up `<key>-cert.pub` by itself (ssh2 cannot log in here at all).
describeSsh("ssh connector conformance, openssh transport, certificate login", () => {
  let sshd: SshdFixture;
  beforeAll(async () => {
    sshd = await startSshd({ userCertificate: true, authorizedKeys: false });
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  describeConnectorConformance(
    "ssh (openssh)",
    async () => {
      const connector = connectorFor(sshd, { transport: "openssh" });
      const scratchDir = `${sshd.home}/conformance-openssh-${randomBytes(4).toString("hex")}`;
      await connector.exec(["mkdir", "-p", scratchDir]);
      return {
        connector,
        scratchDir,
        cleanup: async () => {
          const janitor = connectorFor(sshd, { transport: "openssh" });
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
});

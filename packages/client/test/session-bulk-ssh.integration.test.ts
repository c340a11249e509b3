import { sshConnector } from "@sremote/connector-ssh";
import { describeUnless, SYSTEM_PYTHON } from "@sremote/testkit";
import { type SshdFixture, sshConnectorOptions, sshdMissing, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { RemoteClient } from "../src/index.js";
import { bigCopies } from "./copy-counter.js";

// A real sshd and a real agent: an explicit budget per test and hook.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const MIB = 1024 * 1024;

// Big results over both SSH transports, through the session carrier: the OpenSSH transport's
// processes offer readStdoutInto (each multiplexed ssh's stdout is a socket read in place,
// after the start marker was taken off it); ssh2's channel is read through 'data'.
describeUnless(sshdMissing())("session carrier over SSH: large results", () => {
  let sshd: SshdFixture;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it.each(["openssh", "ssh2"] as const)(
    "%s: a large result next to small calls comes back intact (read in place over openssh, assembled over ssh2)",
    async (transport) => {
      const client = new RemoteClient({
        connector: sshConnector({ ...sshConnectorOptions(sshd), transport }),
        python: SYSTEM_PYTHON,
        layout: {
          endpointDir: `${sshd.home}/.sremote-bulk-${transport}`,
          tmpDir: `${sshd.home}/.sremote-bulk-${transport}/tmp`,
          workDir: sshd.home,
        },
      });
      try {
        expect((await client.call("math", "sqrt", [4], { mode: "session" })).value).toBe(2);
        const n = 6 * MIB + 5;
        const { value, copied } = await bigCopies(() =>
          Promise.all([
            client.call<Uint8Array>("os", "urandom", [n], { mode: "session" }),
            client.call("math", "sqrt", [9], { mode: "session" }),
          ]),
        );
        const [big, small] = value;
        expect(small.value).toBe(3);
        expect(big.value.byteLength).toBe(n);
        // The echo must give the same bytes back (an argument written from our memory, a
        // result assembled from reads wherever they landed).
        const again = await client.call<Uint8Array>("builtins", "bytes", [big.value], { mode: "session" });
        expect(Buffer.from(again.value).equals(Buffer.from(big.value))).toBe(true);
        if (transport === "openssh") expect(copied).toBeLessThan(MIB);
        else expect(copied).toBeGreaterThanOrEqual(n - MIB); // ssh2: assembled from packets
      } finally {
        await client.close();
      }
    },
  );
});

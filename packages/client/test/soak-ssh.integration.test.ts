import { sshConnector } from "@sremote/connector-ssh";
import { describeUnless, SYSTEM_PYTHON, seededRandom } from "@sremote/testkit";
import { sshConnectorOptions, sshdMissing, startSshd } from "@sremote/testkit/sshd";
import { expect, it, vi } from "vitest";
import { RemoteClient } from "../src/index.js";
import { type SoakTally, soakCalls } from "./soak-calls.js";
import { faultTable, recordFaults } from "./soak-support.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The soak's SSH leg (issue 15), smaller: calls over 4 sessions through a real sshd with a
// seeded fault every ~1,000 calls — the connection's sshd processes SIGKILLed (every session
// drops; the client reconnects) or one agent SIGKILLed. Every call settles once with its own
// value or CONNECTION_LOST; afterwards nothing of the account runs on the server and no
// carrier file is there. SREMOTE_SOAK_SSH_CALLS changes the count (default 5,000).
const CALLS = Number(process.env.SREMOTE_SOAK_SSH_CALLS ?? 5000);
const SESSIONS = 4;
const IN_FLIGHT = 32;
const FAULT_EVERY = 1000;
type Fault = "sshd child killed" | "agent killed";

describeUnless(sshdMissing())(`soak over SSH: ${CALLS} calls over ${SESSIONS} sessions with faults`, () => {
  it("answers every call exactly once and leaves nothing on the server", async () => {
    const t0 = Date.now();
    const phases: string[] = [];
    const phase = (name: string) => phases.push(`${name} ${Date.now() - t0} ms`);
    const sshd = await startSshd();
    phase("sshd");
    const client = new RemoteClient({
      connector: sshConnector(sshConnectorOptions(sshd)),
      python: SYSTEM_PYTHON,
      mode: "session",
      poolSize: SESSIONS,
    });
    const random = seededRandom(16);
    let tally: SoakTally<Fault>;
    let left: number[] = [];
    let files: string[] = [];
    try {
      await Promise.all(Array.from({ length: SESSIONS * 2 }, () => client.call("math", "sqrt", [1])));
      phase("agent installed, sessions up");
      tally = await soakCalls({
        calls: CALLS,
        inFlight: IN_FLIGHT,
        faultEvery: FAULT_EVERY,
        random,
        connector: "ssh",
        faults: ["sshd child killed", "agent killed"],
        call: async (i) => (await client.call<number>("builtins", "abs", [i])).value,
        inject: async (fault) => {
          if (fault === "sshd child killed") {
            await sshd.killConnections();
          } else {
            const pid = (await client.call<number>("os", "getpid")).value;
            await client.call("os", "kill", [pid, 9]).catch(() => undefined);
          }
          return "killed";
        },
      });
      phase("calls");
    } finally {
      await client.close();
      for (let i = 0; i < 150; i++) {
        left = await sshd.userProcesses();
        if (left.length === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const lister = sshConnector(sshConnectorOptions(sshd));
      const r = await lister.exec([
        "find",
        sshd.home,
        "-type",
        "f",
        "(",
        "-name",
        "*.req",
        "-o",
        "-name",
        "*.resp",
        "-o",
        "-name",
        "*.part",
        ")",
      ]);
      files = r.stdout.split("\n").filter((l) => l !== "");
      await lister.close();
      await sshd.stop();
      phase("checked and stopped");
    }
    const { errors, settled, answered, wrong, failed, rows } = tally;
    console.log(
      [
        `soak ssh phases: ${phases.join(", ")}`,
        `soak ssh: ${CALLS} calls, ${SESSIONS} sessions, ${IN_FLIGHT} in flight: settled ${settled}, values ${answered}, typed errors ${failed} ${JSON.stringify(Object.fromEntries(errors))}, wrong ${wrong}`,
        faultTable(
          recordFaults(
            "soak-ssh.integration.test.ts",
            [...rows.values()].map((r) => ({ ...r, leftoverProcesses: left.length, leftoverFiles: files.length })),
          ),
        ),
      ].join("\n"),
    );
    expect(settled).toBe(CALLS);
    expect(answered + failed).toBe(CALLS);
    expect(wrong).toBe(0);
    for (const code of errors.keys()) expect(["CONNECTION_LOST"]).toContain(code);
    expect(left).toEqual([]);
    expect(files).toEqual([]);
  });
});

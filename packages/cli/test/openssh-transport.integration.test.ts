import { describeUnless } from "@sremote/testkit";
import { type SshdFixture, sshCliFlags, sshdMissing, sshTarget, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { EXIT } from "../src/index.js";
import { runInProcess, SYSTEM_PYTHON, sremote } from "./run-cli.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The sshproxy case from the command line: an account without authorized_keys, a key
// whose `KEY-cert.pub` (signed by the server's user CA) sits beside it. Only the system
// ssh can log in; `--transport openssh` makes the CLI use it.
describeUnless(sshdMissing())("sremote call ssh:// --transport openssh with a certificate", () => {
  let sshd: SshdFixture;
  beforeAll(async () => {
    sshd = await startSshd({ userCertificate: true, authorizedKeys: false });
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it("calls math.sqrt through the sremote command (session carrier), logging in with KEY-cert.pub", async () => {
    const r = await sremote([
      "call",
      sshTarget(sshd),
      "math.sqrt",
      "2",
      "--transport",
      "openssh",
      ...sshCliFlags(sshd),
      "--python",
      SYSTEM_PYTHON,
    ]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(EXIT.ok);
    expect(r.stdout).toBe("1.4142135623730951\n");
  });

  it("works on the file carrier too, and ssh2 (the default) is refused with advice to use openssh", async () => {
    const flags = [...sshCliFlags(sshd), "--python", SYSTEM_PYTHON, "--json"];
    const file = await runInProcess([
      "call",
      sshTarget(sshd),
      "math.sqrt",
      "16",
      "--transport",
      "openssh",
      "--mode",
      "file",
      ...flags,
    ]);
    expect(file.status).toBe(EXIT.ok);
    expect(JSON.parse(file.stdout).value).toBe(4);
    const ssh2 = await runInProcess(["call", sshTarget(sshd), "math.sqrt", "16", ...flags]);
    expect(ssh2.status).not.toBe(EXIT.ok);
    const err = JSON.parse(ssh2.stdout).error;
    expect(err.code).toBe("AUTH_FAILED");
    expect(err.message).toContain('transport: "openssh"');
  });

  it("rejects an unknown --transport as a usage error", async () => {
    const r = await runInProcess([
      "call",
      sshTarget(sshd),
      "math.sqrt",
      "2",
      "--transport",
      "putty",
      ...sshCliFlags(sshd),
    ]);
    expect(r.status).toBe(EXIT.usage);
    expect(r.stderr).toMatch(/--transport expects ssh2, openssh or auto/);
  });
});

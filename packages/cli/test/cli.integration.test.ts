import { describeUnless, pythonHasModules, SYSTEM_PYTHON } from "@sremote/testkit";
import { sshdMissing } from "@sremote/testkit/sshd";
import { describe, expect, it, vi } from "vitest";
import { EXIT, main } from "../src/index.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** Runs the CLI in-process and captures what it prints. */
async function run(...argv: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } };
  const status = await main(argv, io);
  return { status, stdout, stderr };
}

describe("sremote call local:", () => {
  it.each(["session", "file"])("calls a function and prints the value (%s)", async (mode) => {
    const r = await run("call", "local:", "math.sqrt", "16", "--mode", mode);
    expect(r).toMatchObject({ status: EXIT.ok, stdout: "4\n" });
  });

  it("prints one JSON object with --json, tagged values included", async () => {
    const r = await run("call", "local:", "base64.b64decode", "aGVsbG8=", "--json");
    expect(r.status).toBe(EXIT.ok);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ ok: true, value: { $bytes: "aGVsbG8=" }, stdout: "", stderr: "" });
    expect(typeof out.durationMs).toBe("number");
  });

  it("parses JSON arguments, strings and --kw", async () => {
    const r = await run(
      "call",
      "local:",
      "textwrap.shorten",
      "The quick brown fox jumps",
      "--kw",
      "width=15",
      "--json",
    );
    expect(JSON.parse(r.stdout).value).toBe("The quick [...]");
    const big = await run("call", "local:", "operator.add", '{"$bigint":"9007199254740993"}', "1", "--json");
    expect(JSON.parse(big.stdout).value).toEqual({ $bigint: "9007199254740994" });
  });

  it("applies --env, --env-default and --path-append", async () => {
    expect((await run("call", "local:", "os.getenv", "SREMOTE_CLI", "--env", "SREMOTE_CLI=yes")).stdout).toBe("yes\n");
    expect((await run("call", "local:", "os.getenv", "SREMOTE_CLI_D", "--env-default", "SREMOTE_CLI_D=d")).stdout).toBe(
      "d\n",
    );
    const path = await run("call", "local:", "os.getenv", "PATH", "--path-append", "/opt/x");
    expect(path.stdout.trim().endsWith(":/opt/x")).toBe(true);
  });

  it("exits 1 with the traceback on stderr when the function raises", async () => {
    const r = await run("call", "local:", "json.loads", "{bad");
    expect(r.status).toBe(EXIT.remoteFailed);
    expect(r.stderr).toContain("Traceback");
    expect(r.stderr).toContain("JSONDecodeError");
    const j = await run("call", "local:", "no_such_module_q.f", "--json");
    expect(j.status).toBe(EXIT.remoteFailed);
    expect(JSON.parse(j.stdout).error).toMatchObject({
      code: "REMOTE_EXEC",
      kind: "import",
      type: "ModuleNotFoundError",
    });
  });

  it("exits 2 on bad usage", async () => {
    expect((await run("call", "local:", "nodot")).status).toBe(EXIT.usage);
    expect((await run("call", "bogus://x", "math.sqrt", "1")).status).toBe(EXIT.usage);
    expect((await run("call", "local:", "math.sqrt", "--mode", "fast")).status).toBe(EXIT.usage);
    expect((await run("frobnicate")).status).toBe(EXIT.usage);
  });

  it("exits 3 when a requirement is not met, 124 on timeout", async () => {
    const req = await run("call", "local:", "math.sqrt", "4", "--require", "no_such_dist_q>=1", "--json");
    expect(req.status).toBe(EXIT.setup);
    expect(JSON.parse(req.stdout).error.code).toBe("MODULES");
    const slow = await run("call", "local:", "time.sleep", "10", "--timeout", "300");
    expect(slow.status).toBe(EXIT.timeout);
  });
});

describe("sremote doctor", () => {
  it("reports python, agent, codec and layout of local:", async () => {
    const r = await run("doctor", "local:", "--json");
    expect(r.status).toBe(EXIT.ok);
    const report = JSON.parse(r.stdout);
    expect(report.layout.source).toBe("package");
    expect(report.agent.upToDate).toBe(true);
    expect(report.python.codec).toMatch(/^(c|pure)$/);
    expect(report.python.python).toMatch(/^3\./);
  });
});

describe("sremote call sfapi://", () => {
  it("calls through the SFAPI double with --key-file, and with a ready token from the environment", async () => {
    const { startSfapiDouble } = await import("@sremote/testkit/sfapi-double");
    const double = await startSfapiDouble({ machines: ["perlmutter"] });
    const saved = { ...process.env };
    try {
      const client = double.clients[0]!;
      const keyFile = await double.writeKeyFile(client.clientId, "pem");
      const flags = ["--sfapi-url", double.baseUrl, "--token-url", double.tokenUrl, "--python", SYSTEM_PYTHON];
      const r = await run("call", "sfapi://perlmutter", "math.sqrt", "2", ...flags, "--key-file", keyFile, "--json");
      expect(r.stderr).toBe("");
      expect(r.status).toBe(EXIT.ok);
      expect(JSON.parse(r.stdout).value).toBeCloseTo(Math.SQRT2);
      // A ready token instead of a key; the token never reaches the output.
      const token = double.issueAccessToken(client.clientId);
      process.env.SREMOTE_SFAPI_TOKEN = token;
      const t = await run("call", "sfapi://perlmutter", "math.sqrt", "16", ...flags, "--json");
      expect(t.status).toBe(EXIT.ok);
      expect(JSON.parse(t.stdout).value).toBe(4);
      expect(t.stdout + t.stderr).not.toContain(token);
      // Neither: a usage error that says what is needed.
      delete process.env.SREMOTE_SFAPI_TOKEN;
      delete process.env.SREMOTE_SFAPI_KEY_FILE;
      const none = await run("call", "sfapi://perlmutter", "math.sqrt", "2", ...flags);
      expect(none.status).toBe(EXIT.usage);
      expect(none.stderr).toMatch(/--key-file/);
    } finally {
      process.env = saved;
      await double.close();
    }
  }, 120_000);
});

describe("sremote call newt://", () => {
  it("calls through the NEWT double with credentials from the environment", async () => {
    const { startNewtDouble, DEFAULT_NEWT_USER } = await import("@sremote/testkit/newt-double");
    const double = await startNewtDouble();
    const saved = { ...process.env };
    process.env.SREMOTE_NEWT_USER = DEFAULT_NEWT_USER.username;
    process.env.SREMOTE_NEWT_PASSWORD = DEFAULT_NEWT_USER.password;
    try {
      const r = await run("call", "newt://cori", "math.sqrt", "2", "--newt-url", double.baseUrl, "--json");
      expect(r.status).toBe(EXIT.ok);
      expect(JSON.parse(r.stdout).value).toBeCloseTo(Math.SQRT2);
      // The password never reaches the output or the double's request log.
      expect(r.stdout + r.stderr).not.toContain(DEFAULT_NEWT_USER.password);
      expect(JSON.stringify(double.requestLog)).not.toContain(DEFAULT_NEWT_USER.password);
      process.env.SREMOTE_NEWT_PASSWORD = "wrong";
      const bad = await run("call", "newt://cori", "math.sqrt", "2", "--newt-url", double.baseUrl, "--json");
      expect(bad.status).toBe(EXIT.setup);
      expect(JSON.parse(bad.stdout).error.code).toBe("AUTH_FAILED");
    } finally {
      process.env = saved;
      await double.close();
    }
  }, 60_000);
});

describeUnless(sshdMissing())("sremote call ssh://", () => {
  it("calls over SSH with --identity and --known-hosts, uploading the agent itself", async () => {
    const { startSshd, sshCliFlags, sshTarget } = await import("@sremote/testkit/sshd");
    const sshd = await startSshd();
    try {
      const target = sshTarget(sshd);
      const flags = sshCliFlags(sshd);
      const r = await run("call", target, "math.sqrt", "2", ...flags, "--python", "/usr/bin/python3", "--json");
      expect(r.status).toBe(EXIT.ok);
      expect(JSON.parse(r.stdout).value).toBeCloseTo(Math.SQRT2);
      const doctor = await run("doctor", target, ...flags, "--python", "/usr/bin/python3", "--json");
      // The C codec where Debian's python3-msgpack is installed, the pure one otherwise.
      const codec = pythonHasModules(SYSTEM_PYTHON, ["msgpack"]) ? "c" : "pure";
      expect(JSON.parse(doctor.stdout)).toMatchObject({ agent: { upToDate: true }, python: { codec } });
    } finally {
      await sshd.stop();
    }
  }, 120_000);

  it("refuses an unknown host key with its fingerprint and exit status 3", async () => {
    const { startSshd, sshCliFlags, sshTarget } = await import("@sremote/testkit/sshd");
    const { mkdtempSync, rmSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const sshd = await startSshd();
    const dir = mkdtempSync(join(tmpdir(), "sremote-kh-"));
    const empty = join(dir, "known_hosts");
    writeFileSync(empty, "");
    try {
      const r = await run(
        "call",
        sshTarget(sshd),
        "math.sqrt",
        "2",
        ...sshCliFlags(sshd, { knownHostsPath: empty }),
        "--json",
      );
      expect(r.status).toBe(EXIT.setup);
      const err = JSON.parse(r.stdout).error;
      expect(err.code).toBe("HOST_KEY_UNKNOWN");
      expect(err.message).toContain(sshd.hostKeyFingerprint);
    } finally {
      await sshd.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it.runIf(process.getuid?.() === 0)(
    "takes the password from --password-env and never prints it",
    async () => {
      const { startSshd, sshTarget } = await import("@sremote/testkit/sshd");
      const sshd = await startSshd({ password: true });
      const saved = process.env.SREMOTE_TEST_SSH_PW;
      try {
        const target = sshTarget(sshd);
        const common = [
          "--known-hosts",
          sshd.knownHostsPath,
          "--ssh-config",
          "/dev/null",
          "--password-env",
          "SREMOTE_TEST_SSH_PW",
        ];
        process.env.SREMOTE_TEST_SSH_PW = sshd.password;
        const ok = await run("call", target, "os.getcwd", ...common, "--python", "/usr/bin/python3", "--json");
        expect(ok.status).toBe(EXIT.ok);
        process.env.SREMOTE_TEST_SSH_PW = `${sshd.password}-wrong`;
        const bad = await run("call", target, "os.getcwd", ...common, "--json");
        expect(bad.status).toBe(EXIT.setup);
        expect(JSON.parse(bad.stdout).error.code).toBe("AUTH_FAILED");
        for (const out of [ok.stdout, ok.stderr, bad.stdout, bad.stderr])
          expect(out).not.toContain(sshd.password as string);
        const missing = await run("call", target, "os.getcwd", "--password-env", "SREMOTE_NO_SUCH_VAR_Q");
        expect(missing.status).toBe(EXIT.usage);
      } finally {
        if (saved === undefined) delete process.env.SREMOTE_TEST_SSH_PW;
        else process.env.SREMOTE_TEST_SSH_PW = saved;
        await sshd.stop();
      }
    },
    120_000,
  );
});

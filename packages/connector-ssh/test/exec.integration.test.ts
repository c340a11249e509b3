import { expectCode, HOSTILE_WORDS, remoteExists, sleep } from "@sremote/testkit";
import { type SshdFixture, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type SshConnector, sshConnector } from "../src/index.js";
import { describeSsh, fixtureOptions } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const ROOT = process.getuid?.() === 0;
const PRINT_ARGV = ["/usr/bin/python3", "-c", "import sys, json; sys.stdout.write(json.dumps(sys.argv[1:]))"];
/** Leaves $1 after 2 s from a background child and $2 from itself, unless its whole group is killed. */
const SLOW = '(sleep 2; echo late > "$1") & sleep 2; echo late > "$2"; wait';

// These tests edit the account's login scripts: they use an account of their own.
describe.runIf(ROOT)("commands through the login shell", () => {
  let fixture: SshdFixture;
  let c: SshConnector;
  beforeAll(async () => {
    fixture = await startSshd({ user: "sremote-shell" });
    c = sshConnector(fixtureOptions(fixture));
    await c.putFile(".profile", Buffer.from("export SREMOTE_PROFILE='from profile'\n"));
    // Login scripts that print: the command's output must still be exactly its own.
    await c.putFile(".bashrc", Buffer.from("echo bashrc-noise\n"));
  });
  afterAll(async () => {
    await c?.close();
    await fixture?.stop();
  });

  it("loginEnv runs the command in a login shell (profile read); without it the profile is not read", async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
    const argv = ["/bin/sh", "-c", 'printf "%s" "${SREMOTE_PROFILE-unset}"'];
    const plain = await c.exec(argv);
    expect(plain.stdout.endsWith("unset")).toBe(true);
    const login = await c.exec(argv, { loginEnv: true });
    expect(login.stdout.endsWith("from profile")).toBe(true);
  });

  it("argv stays verbatim through the extra quoting of the login shell, with cwd and env", async () => {
    const r = await c.exec([...PRINT_ARGV, ...HOSTILE_WORDS], {
      loginEnv: true,
      cwd: "/tmp",
      env: { SREMOTE_X: "$(touch /tmp/pwned) `id` 'q'" },
    });
    expect(r.exitCode).toBe(0);
    const json = r.stdout.slice(r.stdout.indexOf("["));
    expect(JSON.parse(json)).toEqual(HOSTILE_WORDS);
    const env = await c.exec(["/bin/sh", "-c", 'printf "%s" "$SREMOTE_X"'], {
      loginEnv: true,
      env: { SREMOTE_X: "$(touch /tmp/pwned) `id` 'q'" },
    });
    expect(env.stdout.endsWith("$(touch /tmp/pwned) `id` 'q'")).toBe(true);
  });

  it("output printed by login scripts comes before the command's own and does not hide its PID", async () => {
    const r = await c.exec(["printf", "%s", "mine"]);
    expect(r.stdout).toBe("bashrc-noise\nmine");
    const late = `${fixture.home}/noisy-late`;
    const started = Date.now();
    await expectCode(c.exec(["sh", "-c", SLOW, "sh", `${late}-child`, late], { timeoutMs: 700 }), "TIMEOUT");
    await sleep(Math.max(0, started + 3500 - Date.now()));
    expect(await remoteExists(c, late)).toBe(false);
    expect(await remoteExists(c, `${late}-child`)).toBe(false);
  });
});

// OpenSSH refuses signal requests for sessions under a ForceCommand; the connector then
// ends the command through a second channel that kills its process group by PID.
describeSsh("ending commands where the server ignores signal requests", () => {
  let fixture: SshdFixture;
  let c: SshConnector;
  beforeAll(async () => {
    // The wrapper shell forks the command (`; true`), so the PID printed is not the group leader.
    fixture = await startSshd({ extraConfig: ['ForceCommand /bin/sh -c "$SSH_ORIGINAL_COMMAND"; true'] });
    c = sshConnector(fixtureOptions(fixture));
  });
  afterAll(async () => {
    await c?.close();
    await fixture?.stop();
  });

  it("a timeout still ends the command and its children", async () => {
    const late = `${fixture.home}/forced-late-${process.pid}`;
    const started = Date.now();
    await expectCode(c.exec(["sh", "-c", SLOW, "sh", `${late}-child`, late], { timeoutMs: 700 }), "TIMEOUT");
    await sleep(Math.max(0, started + 3500 - Date.now()));
    const check = await c.exec(["sh", "-c", 'ls "$1" "$1-child" 2>/dev/null | wc -l', "sh", late]);
    expect(check.stdout.trim()).toBe("0");
    expect(await fixture.userProcesses()).toEqual([]);
    // The server did refuse the signal request (so the fallback is what worked).
    expect(await fixture.readLog()).toMatch(/refusing to send signal/);
  });

  it("kill() on a spawned process delivers the signal to its group", async () => {
    const proc = await c.spawn(["sleep", "60"]);
    proc.stdout.resume();
    proc.stderr.resume();
    proc.kill("SIGTERM");
    const exit = await proc.exited;
    // The forced wrapper shell reports how its child died: by SIGTERM (143), or the signal itself.
    expect(exit.exitCode === 143 || exit.signal === "SIGTERM").toBe(true);
    expect(await fixture.userProcesses()).toEqual([]);
  });
});

describeSsh("exit status", () => {
  it("reports the signal that ended a command by name", async () => {
    const f = await startSshd();
    try {
      await using c = sshConnector(fixtureOptions(f));
      expect(await c.exec(["sh", "-c", "kill -TERM $$"])).toEqual({
        stdout: "",
        stderr: "",
        exitCode: null,
        signal: "SIGTERM",
      });
      expect((await c.exec(["sh", "-c", "exit 255"])).exitCode).toBe(255);
    } finally {
      await f.stop();
    }
  });
});

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectCode } from "@sremote/testkit";
import { type SshdFixture, sshdProbe, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { sshConnector } from "../src/index.js";
import { describeSsh, fixtureOptions, recordingLogger, sshd } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const dir = mkdtempSync(join(tmpdir(), "sremote-auth-"));
const PASSPHRASE = "correct horse 'battery' $(staple)";

function keygen(name: string, passphrase = ""): { path: string; publicKey: string } {
  const path = join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", path]);
  return { path, publicKey: readFileSync(`${path}.pub`, "utf8").trim() };
}

/** Asserts that `secret` shows up nowhere: message, JSON form, cause chain, log lines. */
function expectNoSecret(err: unknown, secret: string, lines: readonly string[] = []): void {
  const seen: string[] = [...lines];
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    seen.push(String((e as Error).message), (e as Error).stack ?? "");
    const json = (e as { toJSON?: () => unknown }).toJSON?.();
    if (json) seen.push(JSON.stringify(json));
    e = (e as { cause?: unknown }).cause;
  }
  for (const text of seen) expect(text).not.toContain(secret);
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeSsh("public key authentication", () => {
  const encrypted = keygen("encrypted", PASSPHRASE);
  const stranger = keygen("stranger");

  beforeAll(async () => {
    await sshdProbe(sshd()).authorizeKey(encrypted.publicKey);
  });

  it("opens an encrypted key with its passphrase (key given as bytes)", async () => {
    const facts = sshd();
    await using c = sshConnector(
      fixtureOptions(facts, {
        privateKeyPath: undefined,
        privateKey: readFileSync(encrypted.path),
        passphrase: PASSPHRASE,
      }),
    );
    expect((await c.exec(["id", "-un"])).stdout).toBe(`${facts.user}\n`);
  });

  it("a wrong or missing passphrase fails AUTH_FAILED without connecting, and never shows the passphrase", async () => {
    const facts = sshd();
    const { lines, logger } = recordingLogger();
    const wrong = sshConnector(
      fixtureOptions(facts, { privateKeyPath: encrypted.path, passphrase: `${PASSPHRASE}!`, logger }),
    );
    const err = await expectCode(wrong.exec(["true"]), "AUTH_FAILED");
    expect(err.message).toMatch(/wrong passphrase/);
    expectNoSecret(err, PASSPHRASE, lines);
    await wrong.close();
    const missing = sshConnector(fixtureOptions(facts, { privateKeyPath: encrypted.path }));
    expect((await expectCode(missing.connect(), "AUTH_FAILED")).message).toMatch(/needs a passphrase/);
    await missing.close();
  });

  it("an unauthorised key fails AUTH_FAILED naming user and host, what was tried and what the server accepts", async () => {
    const facts = sshd();
    const c = sshConnector(fixtureOptions(facts, { privateKeyPath: stranger.path }));
    const err = await expectCode(c.exec(["true"]), "AUTH_FAILED");
    expect(err.message).toContain(`${facts.user}@${facts.host}:${facts.port}`);
    expect(err.message).toContain(`publickey (${stranger.path})`);
    expect(err.message).toMatch(/server accepts publickey/);
    expect((err as unknown as { retryable: boolean }).retryable).toBe(false);
    await c.close();
  });

  it("authenticates with keys held by an ssh-agent", async () => {
    const facts = sshd();
    const socket = join(dir, "agent.sock");
    const agent: ChildProcess = spawn("ssh-agent", ["-D", "-a", socket], { stdio: "ignore" });
    try {
      for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 10));
      execFileSync("ssh-add", [facts.privateKeyPath], {
        env: { ...process.env, SSH_AUTH_SOCK: socket },
        stdio: "ignore",
      });
      await using c = sshConnector(fixtureOptions(facts, { privateKeyPath: undefined, agent: socket }));
      expect((await c.exec(["id", "-un"])).stdout).toBe(`${facts.user}\n`);
      // SSH_AUTH_SOCK is the default agent.
      const saved = process.env.SSH_AUTH_SOCK;
      process.env.SSH_AUTH_SOCK = socket;
      try {
        await using d = sshConnector(fixtureOptions(facts, { privateKeyPath: undefined, agent: undefined }));
        expect((await d.exec(["true"])).exitCode).toBe(0);
      } finally {
        if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
        else process.env.SSH_AUTH_SOCK = saved;
      }
    } finally {
      agent.kill();
    }
  });
});

describeSsh("password authentication", () => {
  let fixture: SshdFixture;
  beforeAll(async () => {
    fixture = await startSshd({ password: true });
  });
  afterAll(() => fixture?.stop());

  it("logs in with the password", async () => {
    await using c = sshConnector(
      fixtureOptions(fixture, { privateKeyPath: undefined, password: fixture.password as string }),
    );
    expect((await c.exec(["id", "-un"])).stdout).toBe(`${fixture.user}\n`);
  });

  it("a wrong password fails AUTH_FAILED; the password appears in no error, JSON or log line", async () => {
    const secret = `${fixture.password}-wrong`;
    const { lines, logger } = recordingLogger();
    const c = sshConnector(fixtureOptions(fixture, { privateKeyPath: undefined, password: secret, logger }));
    const err = await expectCode(c.exec(["true"]), "AUTH_FAILED");
    expect(err.message).toContain(`${fixture.user}@127.0.0.1:${fixture.port}`);
    expect(err.message).toContain("password");
    expectNoSecret(err, secret, lines);
    expect(JSON.stringify((await c.status()).info)).not.toContain(secret);
    await c.close();
  });
});

describeSsh("keyboard-interactive authentication (PAM, as MFA sites use)", () => {
  let fixture: SshdFixture;
  beforeAll(async () => {
    fixture = await startSshd({ keyboardInteractive: true });
  });
  afterAll(() => fixture?.stop());

  it("asks the prompt callback and logs in with its answers", async () => {
    const asked: unknown[] = [];
    await using c = sshConnector(
      fixtureOptions(fixture, {
        privateKeyPath: undefined,
        onKeyboardInteractive: async (prompts, context) => {
          asked.push({ prompts, host: context.host, port: context.port, username: context.username });
          return prompts.map(() => fixture.password as string);
        },
      }),
    );
    expect((await c.exec(["id", "-un"])).stdout).toBe(`${fixture.user}\n`);
    expect(asked).toEqual([
      {
        prompts: [{ prompt: "Password: ", echo: false }],
        host: "127.0.0.1",
        port: fixture.port,
        username: fixture.user,
      },
    ]);
  });

  it("answers a lone password prompt with `password` when there is no callback", async () => {
    await using c = sshConnector(
      fixtureOptions(fixture, { privateKeyPath: undefined, password: fixture.password as string }),
    );
    expect((await c.exec(["true"])).exitCode).toBe(0);
  });

  it("a wrong answer or a failing callback gives AUTH_FAILED, without the answer", async () => {
    const secret = "123456-one-time";
    const { lines, logger } = recordingLogger();
    const wrong = sshConnector(
      fixtureOptions(fixture, { privateKeyPath: undefined, logger, onKeyboardInteractive: () => [secret] }),
    );
    const err = await expectCode(wrong.exec(["true"]), "AUTH_FAILED");
    expect(err.message).toMatch(/keyboard-interactive/);
    expectNoSecret(err, secret, lines);
    await wrong.close();
    const failing = sshConnector(
      fixtureOptions(fixture, {
        privateKeyPath: undefined,
        onKeyboardInteractive: () => {
          throw new Error("user cancelled the prompt");
        },
      }),
    );
    expect((await expectCode(failing.exec(["true"]), "AUTH_FAILED")).message).toMatch(/user cancelled the prompt/);
    await failing.close();
  });
});

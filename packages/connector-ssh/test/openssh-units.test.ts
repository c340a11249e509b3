import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolveSettings } from "../src/config.js";
import { masterArgs, sessionArgs } from "../src/openssh/args.js";
import { decideFromConfig, parseSshG } from "../src/openssh/auto.js";
import { writeScript } from "../src/openssh/files.js";
import { StatusScanner, wrapWithStatus } from "../src/openssh/status.js";

const dir = mkdtempSync(join(tmpdir(), "sremote-openssh-units-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a wrapped line with `sh -c` as sshd would; returns what the scanner makes of stderr. */
function runWrapped(command: string): { status: number | undefined; stderr: string; stdout: string; exit: number } {
  const { line, nonce } = wrapWithStatus(command);
  const r = spawnSync("sh", ["-c", line], { stdio: ["ignore", "pipe", "pipe"] });
  const scanner = new StatusScanner(nonce);
  // One byte at a time: markers split across every possible chunk boundary.
  const out: Buffer[] = [];
  for (const byte of r.stderr) out.push(scanner.push(Buffer.from([byte])));
  out.push(scanner.end());
  return {
    status: scanner.status,
    stderr: Buffer.concat(out).toString(),
    stdout: r.stdout.toString(),
    exit: r.status ?? -1,
  };
}

describe("the exit-status wrapper of the openssh transport", () => {
  it("reports exit 255 (ssh's own failure code) and keeps stdout/stderr exactly", () => {
    const r = runWrapped("printf out; printf 'err\\n' >&2; exit 255");
    expect(r).toMatchObject({ status: 255, stdout: "out", stderr: "err\n", exit: 255 });
  });

  it("reports a death by signal as 128+N without the shell's 'Killed' notice on stderr", () => {
    // As the connector's lines do, the command ends in `exec`.
    const r = runWrapped("echo SREMOTE_PID=$$; exec sh -c 'kill -9 $$'");
    expect(r.status).toBe(137);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^SREMOTE_PID=\d+\n$/);
  });

  it("survives a trailing comment and an `exec` in the command", () => {
    expect(runWrapped("exec sh -c 'exit 7' # trailing comment").status).toBe(7);
  });

  it("a command that forges a similar marker does not confuse it (nonce per command)", () => {
    const r = runWrapped("printf '\\nSREMOTE-000000000000000000:0\\n' >&2; exit 3");
    expect(r.status).toBe(3);
    expect(r.stderr).toBe("\nSREMOTE-000000000000000000:0\n");
  });
});

describe("ssh argument lists", () => {
  const options = { host: "example.org", port: 2222, username: "alice", sshConfigPath: false as const };
  const input = {
    options,
    settings: resolveSettings(options),
    identityFile: "/k/id",
    controlPath: "/tmp/x/c/%C",
  };

  it("passes the remote line as ONE argument after `--`, after the destination", () => {
    const line = "echo 'a b'; rm -rf \"$HOME\" | cat";
    const args = sessionArgs(input, "/tmp/x/c/abc", line);
    const i = args.indexOf("--");
    expect(args.slice(i)).toEqual(["--", "example.org", line]);
    expect(args).toContain("BatchMode=yes");
    expect(args).toContain("ControlPath=/tmp/x/c/abc");
  });

  it("the master: BatchMode unless prompts are allowed, strict host keys by default, ControlPath with %C", () => {
    expect(masterArgs(input, false)).toEqual(expect.arrayContaining(["BatchMode=yes", "StrictHostKeyChecking=yes"]));
    expect(masterArgs(input, true)).toContain("BatchMode=no");
    expect(masterArgs(input, false)).toContain("ControlPath=/tmp/x/c/%C");
    expect(masterArgs(input, false).slice(-2)).toEqual(["--", "example.org"]);
  });
});

describe("transport auto", () => {
  const g = (text: string) => parseSshG(text);

  it("chooses openssh for CertificateFile, a -cert.pub beside an identity, GSSAPI, ProxyCommand", () => {
    expect(decideFromConfig(g("certificatefile ~/.ssh/nersc-cert.pub\n"), { host: "h" }, undefined).transport).toBe(
      "openssh",
    );
    const key = join(dir, "nersc");
    writeFileSync(`${key}-cert.pub`, "ssh-ed25519-cert-v01@openssh.com AAAA\n");
    expect(decideFromConfig(g(`identityfile ${key}\n`), { host: "h" }, undefined)).toMatchObject({
      transport: "openssh",
      reason: `certificate ${key}-cert.pub`,
    });
    expect(decideFromConfig(g("gssapiauthentication yes\n"), { host: "h" }, undefined).transport).toBe("openssh");
    expect(decideFromConfig(g("proxycommand nc %h %p\n"), { host: "h" }, undefined).transport).toBe("openssh");
  });

  it("chooses openssh for a config with Match exec or Include, ssh2 otherwise", () => {
    const plain = g("hostname h\nport 22\ngssapiauthentication no\nidentityfile ~/.ssh/none-such\n");
    expect(decideFromConfig(plain, { host: "h" }, 'Match exec "test -e /x"\n  User a\n').transport).toBe("openssh");
    expect(decideFromConfig(plain, { host: "h" }, "Include ~/.ssh/conf.d/*\n").transport).toBe("openssh");
    expect(decideFromConfig(plain, { host: "h" }, "Host h\n  User a\n").transport).toBe("ssh2");
  });
});

describe("putFile's shell script (run locally with dash's sh)", () => {
  it("publishes the exact bytes with the exact mode, through a temporary file", () => {
    const path = join(dir, "w 'x'");
    for (const mode of [0o600, 0o644, 0o755]) {
      const r = spawnSync("sh", ["-c", writeScript(path, 5, mode)], { input: "hello" });
      expect(r.status).toBe(0);
      expect(readFileSync(path, "utf8")).toBe("hello");
      expect(statSync(path).mode & 0o7777).toBe(mode);
    }
  });

  it("a cut input (fewer bytes than announced) publishes nothing and leaves no temporary file", () => {
    const path = join(dir, "cut");
    writeFileSync(path, "old");
    const r = spawnSync("sh", ["-c", writeScript(path, 1000, 0o644)], { input: "partial" });
    expect(r.status).toBe(5);
    expect(readFileSync(path, "utf8")).toBe("old");
    expect(readdirSync(dir).filter((n) => n.includes("cut."))).toEqual([]);
  });

  it("a missing folder is status 2 and creates nothing", () => {
    const r = spawnSync("sh", ["-c", writeScript(join(dir, "no-such", "f"), 1, 0o600)], { input: "x" });
    expect(r.status).toBe(2);
    expect(existsSync(join(dir, "no-such"))).toBe(false);
  });
});

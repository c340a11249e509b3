import { execFileSync, spawnSync } from "node:child_process";
import { PassThrough } from "node:stream";
import { HOSTILE_WORDS, randomHostileStrings } from "@sremote/testkit";
import { describe, expect, it } from "vitest";
import { findPidMarker, killCommandLine, PidScanner, remoteCommandLine, takePidMarker } from "../src/remote-command.js";

const PRINT_ARGV = ["/usr/bin/python3", "-c", "import sys, json; sys.stdout.write(json.dumps(sys.argv[1:]))"];

/** Runs a command line the way sshd does: `$SHELL -c LINE`, here with bash and dash. */
function runAsSshd(
  shell: string,
  line: string,
  env: NodeJS.ProcessEnv = {},
): { stdout: string; status: number | null } {
  const r = spawnSync(shell, ["-c", line], { encoding: "utf8", env: { PATH: "/usr/bin:/bin", ...env } });
  return { stdout: r.stdout, status: r.status };
}

function withoutMarker(stdout: string): string {
  const scanner = new PidScanner(() => {});
  scanner.push(Buffer.from(stdout));
  return scanner.finish().toString();
}

describe("remote command line", () => {
  it("delivers hostile and random argv verbatim through bash and dash", () => {
    const words = [...HOSTILE_WORDS, ...randomHostileStrings(200, 7)];
    for (const shell of ["/bin/bash", "/bin/dash"]) {
      const line = remoteCommandLine([...PRINT_ARGV, ...words]);
      const r = runAsSshd(shell, line);
      expect(r.status).toBe(0);
      expect(JSON.parse(withoutMarker(r.stdout))).toEqual(words);
    }
  });

  it("applies cwd and env with quoting, and loginEnv through a login shell", () => {
    const env = { SREMOTE_X: "a 'b' \"c\" $(d) `e`\nf" };
    const argv = ["/bin/sh", "-c", 'printf "%s|%s" "$SREMOTE_X" "$(pwd)"'];
    const r = runAsSshd("/bin/bash", remoteCommandLine(argv, { cwd: "/tmp", env }));
    expect(withoutMarker(r.stdout)).toBe(`${env.SREMOTE_X}|/tmp`);
    const login = runAsSshd("/bin/bash", remoteCommandLine(argv, { cwd: "/tmp", env, loginEnv: true }), {
      SHELL: "/bin/bash",
      HOME: "/nonexistent",
    });
    expect(withoutMarker(login.stdout)).toBe(`${env.SREMOTE_X}|/tmp`);
    // The login shell really is a login shell.
    const shopt = runAsSshd("/bin/bash", remoteCommandLine(["/bin/bash", "-c", "echo ok"], { loginEnv: true }), {
      SHELL: "/bin/bash",
    });
    expect(withoutMarker(shopt.stdout)).toBe("ok\n");
    const isLogin = runAsSshd(
      "/bin/bash",
      `echo SREMOTE_PID=$$; exec "\${SHELL:-/bin/sh}" -l -c 'shopt -q login_shell && echo login'`,
      { SHELL: "/bin/bash" },
    );
    expect(withoutMarker(isLogin.stdout)).toBe("login\n");
  });

  it("prints the PID of the process that becomes the command (exec keeps it)", () => {
    const r = runAsSshd("/bin/bash", remoteCommandLine(["/bin/sh", "-c", "echo $$"]));
    const marker = findPidMarker(Buffer.from(r.stdout));
    expect(marker).toBeDefined();
    expect(withoutMarker(r.stdout)).toBe(`${marker?.pid}\n`);
  });

  it("finds the marker only at a line start, after noise from login scripts", () => {
    expect(findPidMarker(Buffer.from("SREMOTE_PID=12\nrest"))).toEqual({ pid: 12, start: 0, end: 15 });
    expect(findPidMarker(Buffer.from("welcome\nSREMOTE_PID=7\n"))).toEqual({ pid: 7, start: 8, end: 22 });
    expect(findPidMarker(Buffer.from("xSREMOTE_PID=7\n"))).toBeUndefined();
    expect(findPidMarker(Buffer.from("SREMOTE_PID=7"))).toBeUndefined();
    const scanner = new PidScanner(() => {});
    scanner.push(Buffer.from("motd\nSREMOTE_PI"));
    scanner.push(Buffer.from("D=42\npayload"));
    expect(scanner.finish().toString()).toBe("motd\npayload");
  });

  it("builds a kill command for the process group and refuses bad input", () => {
    expect(killCommandLine(1234, "SIGTERM")).toMatch(/^kill -s TERM -- -1234 /);
    expect(() => killCommandLine(1, "KILL")).toThrow(RangeError);
    expect(() => killCommandLine(5, "KILL; rm")).toThrow(RangeError);
  });

  it("kill command ends a whole local process group (group leader started with setsid)", async () => {
    const script = "exec 2>/dev/null; sleep 30 >/dev/null & sleep 30 >/dev/null & echo $$; exec >/dev/null; wait";
    const child = spawnSync("setsid", ["-f", "sh", "-c", script], { encoding: "utf8", timeout: 10_000 });
    // setsid -f forks: read the group leader's PID from its output.
    const pid = Number(child.stdout.trim());
    expect(pid).toBeGreaterThan(1);
    const members = () => {
      // Live members only: killed orphans may linger as zombies where PID 1 does not reap.
      const r = spawnSync("pgrep", ["-g", String(pid), "-r", "R,S,D,T"], { encoding: "utf8" });
      return r.stdout.trim().split(/\s+/).filter(Boolean);
    };
    expect(members().length).toBeGreaterThanOrEqual(3);
    execFileSync("/bin/sh", ["-c", killCommandLine(pid, "KILL")]);
    for (let i = 0; i < 100 && members().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(members()).toEqual([]);
  });
});

describe("takePidMarker", () => {
  it("consumes only the marker line and leaves the same stream readable by 'data' listeners", async () => {
    const stream = new PassThrough();
    stream.write("SREMOTE_PID=99\nfirst ");
    const taken = await takePidMarker(stream);
    expect(taken).toEqual({ pid: 99 });
    const seen: string[] = [];
    stream.on("data", (c: Buffer) => seen.push(c.toString()));
    stream.end("second");
    await new Promise((r) => stream.on("end", r));
    expect(seen.join("")).toBe("first second");
  });

  it("hands over what a stream carried when it ended without a marker", async () => {
    const stream = new PassThrough();
    stream.end("no marker here");
    const taken = await takePidMarker(stream);
    expect(taken.pid).toBeUndefined();
    const chunks: Buffer[] = [];
    for await (const c of taken.ended ?? []) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe("no marker here");
  });
});

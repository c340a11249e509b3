import { readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { localConnector } from "../src/index.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sremote-local-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<{ code?: string; message: string; details?: unknown }> {
  try {
    await promise;
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error("expected a rejection");
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie waiting for its (new) parent to reap it is not running anymore.
  const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
  return state !== "Z";
}

async function waitGone(pid: number, limitMs = 10_000): Promise<boolean> {
  const end = Date.now() + limitMs;
  while (processAlive(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** Pids of processes whose command line contains `marker`. */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes(marker) && processAlive(Number(entry))) found.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

describe("files", () => {
  it("writes atomically: a concurrent reader only ever sees a whole old or a whole new file", async () => {
    const local = localConnector();
    const path = join(dir, "atomic.bin");
    const a = Buffer.alloc(2 * 1024 * 1024, "a");
    const b = Buffer.alloc(3 * 1024 * 1024, "b");
    await local.putFile(path, a);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 30; i++) await local.putFile(path, i % 2 ? a : b);
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const seen = await readFile(path);
      expect(seen.equals(a) || seen.equals(b)).toBe(true);
      reads++;
    }
    await writer;
    expect(reads).toBeGreaterThan(0);
    // No temporary files left next to it.
    expect(await readdir(dir)).toEqual(["atomic.bin"]);
    await local.deleteFile(path);
    await local.close();
  });

  it("applies the mode whatever the umask, and 0600 by default", async () => {
    const local = localConnector();
    const old = process.umask(0o077);
    try {
      await local.putFile(join(dir, "m755"), Buffer.from("x"), { mode: 0o755 });
      await local.putFile(join(dir, "m600"), Buffer.from("x"));
    } finally {
      process.umask(old);
    }
    expect((await stat(join(dir, "m755"))).mode & 0o7777).toBe(0o755);
    expect((await stat(join(dir, "m600"))).mode & 0o7777).toBe(0o600);
    await local.deleteFile(join(dir, "m755"));
    await local.deleteFile(join(dir, "m600"));
    await local.close();
  });

  it("maps errors to codes and leaves no temporary file behind on failure", async () => {
    const local = localConnector();
    const missing = await rejection(local.putFile(join(dir, "nope", "f"), Buffer.from("x")));
    expect(missing.code).toBe("FILE_NOT_FOUND");
    expect(missing.message).toMatch(/^local: /);
    expect(missing.details).toMatchObject({ path: join(dir, "nope", "f") });
    // A file where a folder should be.
    await writeFile(join(dir, "plain"), "x");
    expect((await rejection(local.getFile(join(dir, "plain", "f")))).code).toBe("FILE_NOT_FOUND");
    await expect(local.deleteFile(join(dir, "plain", "f"))).resolves.toBeUndefined();
    // Writing over a folder fails at the rename: REMOTE_IO, and the temporary file is gone.
    await mkdir(join(dir, "folder"));
    expect((await rejection(local.putFile(join(dir, "folder"), Buffer.from("x")))).code).toBe("REMOTE_IO");
    expect((await rejection(local.getFile(join(dir, "folder")))).code).toBe("REMOTE_IO");
    expect((await readdir(dir)).sort()).toEqual(["folder", "plain"]);
    await rm(join(dir, "folder"), { recursive: true });
    await rm(join(dir, "plain"));
    await local.close();
  });

  it.runIf(process.platform === "linux")("maps EACCES to PERMISSION_DENIED", async () => {
    // sysfs refuses new files even to root, so this works whoever runs the tests.
    const local = localConnector();
    expect((await rejection(local.putFile("/sys/sremote-test-file", Buffer.from("x")))).code).toBe("PERMISSION_DENIED");
    await local.close();
  });

  it("resolves relative paths against the home folder, and rejects bad arguments", async () => {
    const local = localConnector({ homeDir: dir });
    await local.putFile("relative.txt", Buffer.from("rel"));
    expect(await readFile(join(dir, "relative.txt"), "utf8")).toBe("rel");
    expect(Buffer.from(await local.getFile("relative.txt")).toString()).toBe("rel");
    await local.deleteFile("relative.txt");
    expect((await rejection(local.putFile("", Buffer.from("x")))).code).toBe("INVALID_ARGUMENT");
    expect((await rejection(local.putFile("x", "text" as unknown as Uint8Array))).code).toBe("INVALID_ARGUMENT");
    expect((await rejection(local.putFile("x", Buffer.from("x"), { mode: 0o10000 }))).code).toBe("INVALID_ARGUMENT");
    expect((await rejection(local.getFile("a\0b"))).code).toBe("INVALID_ARGUMENT");
    await local.close();
  });
});

describe("exec", () => {
  it("reports programs that cannot start as a shell would: 127, 126, or a failed cd", async () => {
    const local = localConnector();
    const missing = await local.exec(["sremote-no-such-program"]);
    expect(missing).toEqual({
      stdout: "",
      stderr: "local: sremote-no-such-program: command not found\n",
      exitCode: 127,
      signal: null,
    });
    await writeFile(join(dir, "not-executable"), "#!/bin/sh\n", { mode: 0o644 });
    expect((await local.exec([join(dir, "not-executable")])).exitCode).toBe(126);
    await rm(join(dir, "not-executable"));
    const badCwd = await local.exec(["true"], { cwd: join(dir, "missing-folder") });
    expect(badCwd.exitCode).toBe(1);
    expect(badCwd.stderr).toContain("No such file or directory");
    await local.close();
  });

  it("uses the homeDir option as $HOME and default cwd, and loginEnv reads the login profile", async () => {
    const home = join(dir, "home");
    await mkdir(home);
    await writeFile(join(home, ".profile"), "SREMOTE_FROM_PROFILE='read it'; export SREMOTE_FROM_PROFILE\n");
    const local = localConnector({ homeDir: home });
    expect(await local.homeDir()).toBe(home);
    expect((await local.exec(["sh", "-c", 'printf "%s|%s" "$HOME" "$(pwd)"'])).stdout).toBe(`${home}|${home}`);
    const login = await local.exec(["sh", "-c", 'printf "%s|%s" "$SREMOTE_FROM_PROFILE" "$1"', "sh", "arg 'q'"], {
      loginEnv: true,
    });
    expect(login.stdout).toBe("read it|arg 'q'");
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
    const plain = await local.exec(["sh", "-c", 'printf "%s" "${SREMOTE_FROM_PROFILE-unset}"']);
    expect(plain.stdout).toBe("unset");
    await local.close();
    await rm(home, { recursive: true });
  });

  it("baseEnv replaces process.env; env is merged over it", async () => {
    process.env["SREMOTE_LEAK_CHECK"] = "leaked";
    try {
      const local = localConnector({ baseEnv: { PATH: "/usr/bin:/bin", SREMOTE_BASE: "base" } });
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
      const r = await local.exec(["sh", "-c", 'printf "%s|%s|%s" "${SREMOTE_LEAK_CHECK-unset}" "$SREMOTE_BASE" "$X"'], {
        env: { X: "x y" },
      });
      expect(r.stdout).toBe("unset|base|x y");
      await local.close();
      const inheriting = localConnector();
      expect((await inheriting.exec(["sh", "-c", 'printf %s "$SREMOTE_LEAK_CHECK"'])).stdout).toBe("leaked");
      await inheriting.close();
    } finally {
      delete process.env["SREMOTE_LEAK_CHECK"];
    }
  });

  it("a timeout ends the whole process group, grandchildren included", async () => {
    const local = localConnector();
    const pidFile = join(dir, "grandchild.pid");
    const outcome = rejection(
      local.exec(["sh", "-c", 'sleep 100 & echo $! > "$1.tmp"; mv "$1.tmp" "$1"; wait', "sh", pidFile], {
        timeoutMs: 1500,
      }),
    );
    // The grandchild's pid, written before the deadline (polled: no timing assumptions).
    while (!(await stat(pidFile).catch(() => null))) await new Promise((r) => setTimeout(r, 20));
    const pid = Number((await readFile(pidFile, "utf8")).trim());
    expect(processAlive(pid)).toBe(true);
    expect((await outcome).code).toBe("TIMEOUT");
    expect(pid).toBeGreaterThan(0);
    expect(await waitGone(pid)).toBe(true);
    await rm(pidFile);
    await local.close();
  });

  it("SIGKILLs a group that ignores SIGTERM after killGraceMs", async () => {
    const local = localConnector({ killGraceMs: 200 });
    const pidFile = join(dir, "stubborn.pid");
    const controller = new AbortController();
    const running = local.exec(["sh", "-c", 'trap "" TERM; sleep 100 & echo $! > "$1"; wait; wait', "sh", pidFile], {
      signal: controller.signal,
    });
    while (!(await stat(pidFile).catch(() => null))?.size) await new Promise((r) => setTimeout(r, 20));
    // The pid is complete once the line ends.
    while (!(await readFile(pidFile, "utf8")).endsWith("\n")) await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    expect((await rejection(running)).code).toBe("ABORTED");
    const pid = Number((await readFile(pidFile, "utf8")).trim());
    expect(await waitGone(pid)).toBe(true);
    await rm(pidFile);
    await local.close();
  });

  it("aborting while a large stdin is written rejects cleanly", async () => {
    const local = localConnector();
    const controller = new AbortController();
    const running = local.exec(["sleep", "100"], { stdin: Buffer.alloc(16 * 1024 * 1024), signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    expect((await rejection(running)).code).toBe("ABORTED");
    await local.close();
  });

  it("rejects bad input with INVALID_ARGUMENT", async () => {
    const local = localConnector();
    expect((await rejection(local.exec([]))).code).toBe("INVALID_ARGUMENT");
    expect((await rejection(local.exec([""]))).code).toBe("INVALID_ARGUMENT");
    expect((await rejection(local.exec([1 as unknown as string]))).code).toBe("INVALID_ARGUMENT");
    expect((await rejection(local.exec(["cat"], { stdin: 5 as unknown as string }))).code).toBe("INVALID_ARGUMENT");
    expect((await rejection(local.exec(["true"], { env: { A: "a\0" } }))).code).toBe("INVALID_ARGUMENT");
    expect(() => localConnector({ homeDir: "relative" })).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
    expect(() => localConnector({ killGraceMs: -1 })).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    await local.close();
  });
});

describe("spawn", () => {
  it("a missing program gives an ended process with exit 127 and the reason on stderr", async () => {
    const local = localConnector();
    const proc = await local.spawn(["sremote-no-such-program"]);
    proc.stdin.end("ignored");
    const chunks: Buffer[] = [];
    for await (const c of proc.stderr) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toContain("command not found");
    expect(await proc.exited).toEqual({ exitCode: 127, signal: null });
    proc.kill();
    await local.close();
  });

  it("writing to a process that has exited does not crash; kill(signal) is reported", async () => {
    const local = localConnector();
    const quick = await local.spawn(["true"]);
    await quick.exited;
    quick.stdin.write(Buffer.alloc(1024 * 1024));
    quick.stdin.end();
    const slow = await local.spawn(["sleep", "100"]);
    slow.kill("SIGKILL");
    expect(await slow.exited).toEqual({ exitCode: null, signal: "SIGKILL" });
    await new Promise((r) => setTimeout(r, 50));
    await local.close();
  });

  it("close() SIGKILLs spawned processes that ignore SIGTERM, after the grace", async () => {
    const local = localConnector({ killGraceMs: 200 });
    const proc = await local.spawn(["sh", "-c", 'trap "" TERM; echo ready; while :; do sleep 1; done']);
    await new Promise((r) => proc.stdout.once("data", r));
    proc.stdout.resume();
    await local.close();
    expect(await proc.exited).toEqual({ exitCode: null, signal: "SIGKILL" });
  });
});

describe("resources", () => {
  it("leaves no process and no file descriptor behind after close()", async () => {
    const marker = `sremote-leak-check-${process.pid}-${Date.now()}`;
    const fdsBefore = openFds();
    const local = localConnector({ killGraceMs: 300 });
    for (let i = 0; i < 20; i++) await local.exec(["true"]);
    // Programs that never started hold pipes too, until Node closes them.
    for (let i = 0; i < 10; i++) {
      await local.exec(["sremote-no-such-program"]);
      await local.exec(["true"], { cwd: "/sremote-no-such-folder" });
      await (await local.spawn(["sremote-no-such-program"])).exited;
    }
    await Promise.all(Array.from({ length: 10 }, () => local.exec(["sh", "-c", "cat", marker], { stdin: "x" })));
    // Long-lived processes whose command lines carry the marker: node itself is at hand.
    const idle = [process.execPath, "-e", "setTimeout(() => {}, 1e6)", marker];
    const procs = await Promise.all(Array.from({ length: 5 }, () => local.spawn(idle)));
    // And a grandchild, in the background of a shell.
    const hanging = local.exec(["sh", "-c", '"$@" & wait', "sh", ...idle]);
    const hangingOutcome = rejection(hanging);
    const started = Date.now() + 10_000;
    while (processesWith(marker).length < 7 && Date.now() < started) await new Promise((r) => setTimeout(r, 20));
    expect(processesWith(marker).length).toBe(7);
    await local.close();
    expect((await hangingOutcome).code).toBe("CLOSED");
    for (const p of procs) expect((await p.exited).signal).toBe("SIGTERM");
    const end = Date.now() + 10_000;
    while (processesWith(marker).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(processesWith(marker)).toEqual([]);
    // Streams are closed asynchronously after the exit; give them a moment.
    while (openFds() > fdsBefore && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(openFds()).toBeLessThanOrEqual(fdsBefore);
  });

  it("status() describes the connector and reports closed after close()", async () => {
    const local = localConnector();
    const before = await local.status();
    expect(before.connected).toBe(true);
    expect(before.info).toMatchObject({ pid: process.pid, running: 0 });
    await local.close();
    expect((await local.status()).connected).toBe(false);
    expect((await rejection(local.spawn(["true"]))).code).toBe("CLOSED");
  });
});

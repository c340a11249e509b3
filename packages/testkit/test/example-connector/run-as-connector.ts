// The connector of docs/writing-a-connector.md, kept working by
// test/example-connector.integration.test.ts: it runs everything as another local account
// through `runuser` (so it needs root). Core supplies checks, deadlines, CLOSED, close,
// homeDir and deleteFile; this file is only the transport.
import { type ChildProcess, spawn } from "node:child_process";
import { type Connector, type Deadline, defineConnector, shCommand, shQuote } from "@sremote/core";

/** Options of {@link runAsConnector}. */
export interface RunAsOptions {
  /** The account everything runs as. */
  user: string;
  /** Its home folder: `$HOME` and the default working folder of commands. */
  home: string;
}

interface Ran {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number | null;
}

/** Status a helper script exits with when a path's folder (or the file) does not exist. */
const MISSING = 3;

export function runAsConnector(options: RunAsOptions): Connector {
  const { user, home } = options;
  const running = new Set<Promise<unknown>>();

  /** Runs a shell command line as `user` in a clean environment, in a process group of its own. */
  function run(command: string, dl: Deadline, input?: Uint8Array | string) {
    const environment = [`HOME=${home}`, `USER=${user}`, `LOGNAME=${user}`, "PATH=/usr/local/bin:/usr/bin:/bin"];
    const child = spawn(
      "runuser",
      ["-u", user, "--", "/usr/bin/env", "-i", ...environment, "/bin/sh", "-c", command],
      // runuser and everything it starts share this group: one kill ends them all.
      { detached: true, stdio: ["pipe", "pipe", "pipe"] },
    );
    return collect(child, dl, input);
  }

  function collect(child: ChildProcess, dl: Deadline, input?: Uint8Array | string): Promise<Ran> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (c: Buffer) => out.push(c));
    child.stderr?.on("data", (c: Buffer) => err.push(c));
    child.stdin?.on("error", () => {}); // EPIPE when the command does not read its input
    child.stdin?.end(input);
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    };
    dl.signal.addEventListener("abort", killGroup, { once: true });
    const done = new Promise<Ran>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (exitCode) => {
        dl.signal.removeEventListener("abort", killGroup);
        if (dl.signal.aborted) reject(dl.error("runas: command"));
        else resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err), exitCode });
      });
    });
    const tracked = done.catch(() => {});
    running.add(tracked);
    void tracked.then(() => running.delete(tracked));
    return done;
  }

  return defineConnector((runtime) => ({
    name: "runas",
    // runuser reports a signal as 128 + n, so `signals` is false; no live streams either.
    capabilities: { spawn: false, stdin: true, signals: false, fileModes: true },

    async putFile(path, data, mode, dl) {
      const script = `[ -d "$(dirname -- "$1")" ] || exit ${MISSING}; umask 077; cat > "$1" && chmod "$2" -- "$1"`;
      const r = await run(shCommand(["/bin/sh", "-c", script, "sh", path, mode.toString(8)], { cwd: home }), dl, data);
      if (r.exitCode === MISSING) throw runtime.error("FILE_NOT_FOUND", `putFile ${path}: no such folder`);
      if (r.exitCode !== 0) throw runtime.error("REMOTE_IO", `putFile ${path}: ${r.stderr.toString().trim()}`);
    },

    async getFile(path, dl) {
      const script = `[ -f "$1" ] || exit ${MISSING}; exec cat -- "$1"`;
      const r = await run(shCommand(["/bin/sh", "-c", script, "sh", path], { cwd: home }), dl);
      if (r.exitCode === MISSING) throw runtime.error("FILE_NOT_FOUND", `getFile ${path}: no such file`);
      if (r.exitCode !== 0) throw runtime.error("REMOTE_IO", `getFile ${path}: ${r.stderr.toString().trim()}`);
      return new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.byteLength);
    },

    async exec(argv, opts, dl) {
      const command = shCommand(argv, { cwd: opts.cwd ?? home, env: opts.env });
      const r = await run(opts.loginEnv ? `exec /bin/sh -lc ${shQuote(command)}` : command, dl, opts.stdin);
      return {
        stdout: r.stdout.toString("utf8"),
        stderr: r.stderr.toString("utf8"),
        exitCode: r.exitCode,
        signal: null,
      };
    },

    // Core aborts every pending operation right after this runs; wait until they all ended.
    async close() {
      await Promise.resolve();
      await Promise.all(running);
    },
  }));
}

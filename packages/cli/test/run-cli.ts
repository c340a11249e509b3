import { spawn } from "node:child_process";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { pythonHasModules, SYSTEM_PYTHON } from "@sremote/testkit";
import { main } from "../src/index.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const TSX = `${ROOT}node_modules/.bin/tsx`;
const BIN = `${ROOT}packages/cli/src/bin.ts`;

/** What one run of the command printed. */
export interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `sremote` as its own process from source (stdin closed, stdout and stderr pipes:
 * what a script or CI sees, no terminal).
 */
export function sremote(args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, ["--conditions=@sremote/source", BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ status: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

/**
 * Runs the CLI in this process with captured output; `tty` makes stderr look like a terminal,
 * `answer` is typed on a stdin that looks like one.
 */
export async function runInProcess(argv: string[], options: { tty?: boolean; answer?: string } = {}): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  let stdin: (PassThrough & { isTTY?: boolean }) | undefined;
  if (options.answer !== undefined) {
    stdin = Object.assign(new PassThrough(), { isTTY: true });
    stdin.end(`${options.answer}\n`);
  }
  const io = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s), isTTY: options.tty ?? false, columns: 100 },
    stdin,
  };
  const status = await main(argv, io);
  return { status, stdout, stderr };
}

export { SYSTEM_PYTHON };

/** `/usr/bin/python3` can create venvs with pip (CI installs python3-venv and python3-pip). */
export const systemPythonReady = pythonHasModules(SYSTEM_PYTHON, ["venv", "ensurepip", "pip"]);

/** In CI (SREMOTE_TEST_STRICT=1) a missing prerequisite fails the run instead of skipping tests. */
export function requireInStrictMode(ready: boolean, what: string): void {
  if (!ready && process.env.SREMOTE_TEST_STRICT === "1") {
    throw new Error(`these tests need ${what} (SREMOTE_TEST_STRICT=1)`);
  }
}

/** ESC, the start of every ANSI control sequence. */
export const ESC = "\u001b";

import { spawn } from "node:child_process";
import { closeSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { SshFacts } from "./peers.js";
import { type BenchRow, quantile, shuffle } from "./stats.js";

/** The built command line, as users run it. */
export const CLI_BIN = fileURLToPath(new URL("../../packages/cli/dist/bin.js", import.meta.url));

/** One timed process: ms until its first stdout byte (or its exit, without output) and until its exit. */
export interface ProcessTiming {
  firstOutputMs: number;
  exitMs: number;
}

/** Starts `argv` and times its first output and its exit; rejects when it fails. */
export function timeProcess(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<ProcessTiming> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first: number | undefined;
    let stderr = "";
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env });
    child.stdout.on("data", () => {
      first ??= performance.now() - t0;
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const exitMs = performance.now() - t0;
      if (code !== 0) reject(new Error(`${argv.join(" ")} exited ${code}: ${stderr.trim().slice(-2000)}`));
      else resolve({ firstOutputMs: first ?? exitMs, exitMs });
    });
  });
}

/** Whether the first `python3` on PATH is a script (a pyenv/asdf shim) — it decides much of `call local:`. */
export function python3OnPath(): { path: string; shim: boolean } | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (!dir.startsWith("/")) continue;
    const path = join(dir, "python3");
    try {
      const fd = openSync(path, "r");
      const head = Buffer.alloc(2);
      readSync(fd, head, 0, 2, 0);
      closeSync(fd);
      return { path, shim: head.toString("latin1") === "#!" };
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/**
 * CLI start-up: `node -e 0` (the floor), `sremote --version`, and `sremote call local:
 * math.sqrt 2` (plus `call ssh://…` to the benchmark's sshd when given), each started
 * `runs` times in shuffled rounds; first output and exit, medians.
 */
export async function cliRows(o: {
  runs: number;
  ssh?: SshFacts | undefined;
  /** Another build's bin.js (`--cli-compare`), timed in the same rounds: before/after. */
  compareBin?: string | undefined;
}): Promise<BenchRow[]> {
  const node = process.execPath;
  const cases: Record<string, string[]> = {
    "node -e 0": [node, "-e", "0"],
    "sremote --version": [node, CLI_BIN, "--version"],
    "sremote call local:": [node, CLI_BIN, "call", "local:", "math.sqrt", "2"],
  };
  if (o.compareBin !== undefined) {
    cases["compare: sremote call local:"] = [node, o.compareBin, "call", "local:", "math.sqrt", "2"];
  }
  if (o.ssh) {
    const f = o.ssh;
    cases["sremote call ssh://"] = [
      node,
      CLI_BIN,
      "call",
      `ssh://${f.user}@${f.host}:${f.port}`,
      "math.sqrt",
      "2",
      "--identity",
      f.identity,
      "--known-hosts",
      f.knownHosts,
      "--ssh-config",
      "/dev/null",
      "--python",
      "/usr/bin/python3",
    ];
  }
  const names = Object.keys(cases);
  const first = new Map<string, number[]>(names.map((n) => [n, []]));
  const exit = new Map<string, number[]>(names.map((n) => [n, []]));
  // Untimed: disk caches, and over SSH the agent's first upload to the account.
  for (const n of names) await timeProcess(cases[n] as string[]);
  for (let r = 0; r < o.runs; r++) {
    for (const n of shuffle(names)) {
      const t = await timeProcess(cases[n] as string[]);
      first.get(n)?.push(t.firstOutputMs);
      exit.get(n)?.push(t.exitMs);
    }
  }
  return names.map((n) => {
    const f = (first.get(n) as number[]).sort((a, b) => a - b);
    const e = (exit.get(n) as number[]).sort((a, b) => a - b);
    return {
      name: n,
      connector: n.includes("ssh") ? "ssh" : "local",
      carrier: "cli",
      inFlight: 1,
      medianMs: quantile(f, 0.5),
      p90Ms: quantile(f, 0.9),
      callsPerSec: 1000 / quantile(e, 0.5),
    };
  });
}

/** Verdict lines for the CLI rows (issue 16: ≤ 300 ms local, ≤ 500 ms over SSH, first output). */
export function cliVerdicts(rows: readonly BenchRow[]): string[] {
  const out: string[] = [];
  const find = (n: string) => rows.find((r) => r.carrier === "cli" && r.name === n);
  const floor = find("node -e 0");
  const py = python3OnPath();
  if (py)
    out.push(
      `cli: python3 on PATH is ${py.path}${py.shim ? " (a shim script: its start-up counts in call local:)" : ""}`,
    );
  for (const [n, limit] of [
    ["sremote call local:", 300],
    ["sremote call ssh://", 500],
  ] as const) {
    const r = find(n);
    if (!r) continue;
    out.push(
      `cli: ${n} first output ${r.medianMs.toFixed(0)} ms median (node -e 0 exits after ${floor?.medianMs.toFixed(0) ?? "?"} ms; target ≤ ${limit}) ${r.medianMs <= limit ? "✓" : "✗"}`,
    );
  }
  return out;
}

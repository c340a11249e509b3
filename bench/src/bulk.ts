import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { RemoteLayout } from "@sremote/core";
import type { SshFacts } from "./peers.js";
import { type BenchRow, shuffle } from "./stats.js";

const CHILD = fileURLToPath(new URL("./bulk-child.mjs", import.meta.url));

/** What bulk-child.mjs measures. */
interface BulkSpec {
  /** `cat-oneway`: bytes into `cat >/dev/null`; `session-echo`: `builtins.bytes(payload)` round trip. */
  kind: "cat-oneway" | "session-echo";
  bytes: number;
  python: string;
  /** Over SSH (else the local connector); `transport` as sshConnector's (default ssh2). */
  ssh?: (SshFacts & { transport?: "openssh" | undefined }) | undefined;
  layout: RemoteLayout;
  /** Transfers in the one process (default 1); `lastMs` is the last one's time. */
  repeat?: number | undefined;
}

/** What bulk-child.mjs found. */
interface BulkMeasurement {
  /** The first transfer's time (a fresh process). */
  ms: number;
  /** The last transfer's time (with `repeat`: the process warm). */
  lastMs: number;
  /** The child's peak resident set (bytes). */
  clientPeakRss: number;
  /** Its resident set before the payload was made (bytes). */
  clientBaseRss: number;
  /** The agent's peak resident set (VmHWM, bytes), when its /proc entry was readable. */
  agentPeakRss?: number | undefined;
}
const MIB = 1024 * 1024;

/**
 * The client's environment for the `local+thp` rows: glibc's malloc asks for transparent
 * huge pages for its big chunks (what interpreter.sh does for the agent). A library cannot
 * set this for the program that loads it; docs/performance.md shows what it buys.
 */
export const CLIENT_THP_ENV = { GLIBC_TUNABLES: "glibc.malloc.hugetlb=1" } as const;

/** Runs one measurement in a fresh Node process (its own peak RSS). */
function runChild(spec: BulkSpec, env?: Readonly<Record<string, string>>): Promise<BulkMeasurement> {
  return new Promise((resolve, reject) => {
    // Plain node: the client as users run it, without a TypeScript loader in its RSS.
    const child = spawn(process.execPath, [CHILD, JSON.stringify(spec)], {
      stdio: ["ignore", "pipe", "pipe"],
      env: env ? { ...process.env, ...env } : process.env,
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      err += b.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(JSON.parse(out) as BulkMeasurement);
      else
        reject(new Error(`bulk ${spec.kind} of ${spec.bytes} bytes failed (exit ${code}): ${err.trim().slice(-3000)}`));
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** One bulk row's figures, kept for the verdicts. */
export interface BulkResult {
  connector: string;
  mib: number;
  /** Median ms of the session echo and of `cat >/dev/null`. */
  echoMs: number;
  catMs: number;
  /** Payload bytes moved per second: 2× the payload for the echo, 1× for cat. */
  echoMiBs: number;
  catMiBs: number;
  /** Highest peak RSS over the runs, as a multiple of the payload. */
  clientRssRatio: number;
  /** The same, less the RSS the client had before making the payload (Node, the session). */
  clientRssGrowthRatio: number;
  agentRssRatio: number | undefined;
  /**
   * At {@link WARM_MIB}: the same share once the process is warm — the last of
   * {@link WARM_REPEAT} echoes (and `cat`s) in one process, median over the rounds.
   */
  warmShare?: number | undefined;
}

/** The payload size whose warm share is measured too. */
const WARM_MIB = 64;
/** Transfers per warm child: the last one is timed. */
const WARM_REPEAT = 3;

/**
 * `builtins.bytes(payload)` echoed through the session carrier against the raw channel
 * (`cat >/dev/null` through the same connector), alternating in shuffled rounds, each in a
 * fresh process: median time, throughput and peak RSS of client and agent.
 */
export async function bulkRows(o: {
  python: string;
  sizesMiB: readonly number[];
  runs: number;
  ssh?: { facts: SshFacts; layout: RemoteLayout; python: string } | undefined;
}): Promise<{ rows: BenchRow[]; results: BulkResult[] }> {
  const tmp = await mkdtemp(join(tmpdir(), "sremote-bench-bulk-"));
  const rows: BenchRow[] = [];
  const results: BulkResult[] = [];
  try {
    const local = {
      name: "local",
      python: o.python,
      ssh: undefined as BulkSpec["ssh"],
      layout: { endpointDir: "", tmpDir: tmp, workDir: tmp } as RemoteLayout,
      env: undefined as Readonly<Record<string, string>> | undefined,
    };
    const targets = [
      local,
      // The same, the client (and the raw channel's writer) started with CLIENT_THP_ENV.
      { ...local, name: "local+thp", env: CLIENT_THP_ENV },
      ...(o.ssh
        ? [
            { name: "ssh", python: o.ssh.python, ssh: o.ssh.facts, layout: o.ssh.layout, env: undefined },
            // The same sshd through the system OpenSSH client (what sshproxy/MFA users run).
            {
              name: "ssh-openssh",
              python: o.ssh.python,
              ssh: { ...o.ssh.facts, transport: "openssh" as const },
              layout: o.ssh.layout,
              env: undefined,
            },
          ]
        : []),
    ];
    for (const t of targets) {
      for (const mib of o.sizesMiB) {
        process.stderr.write(`  bulk: ${t.name}, ${mib} MiB, session echo and cat, ${o.runs} rounds…\n`);
        const base = { bytes: Math.round(mib * MIB), python: t.python, ssh: t.ssh, layout: t.layout };
        const got: Record<string, BulkMeasurement[]> = { "session-echo": [], "cat-oneway": [] };
        for (let r = 0; r < o.runs; r++) {
          for (const kind of shuffle(["session-echo", "cat-oneway"] as const)) {
            got[kind]?.push(await runChild({ ...base, kind }, t.env));
          }
        }
        // Warm: the first transfer of a fresh process pays one-time costs (the kernel's
        // first huge-page compaction, allocator growth, JIT) that a program moving data more
        // than once pays once. Separate children, so the rows above keep their own RSS.
        let warmShare: number | undefined;
        if (mib === WARM_MIB) {
          const warm: Record<string, number[]> = { "session-echo": [], "cat-oneway": [] };
          for (let r = 0; r < o.runs; r++) {
            for (const kind of shuffle(["session-echo", "cat-oneway"] as const)) {
              warm[kind]?.push((await runChild({ ...base, kind, repeat: WARM_REPEAT }, t.env)).lastMs);
            }
          }
          const warmEchoMs = median(warm["session-echo"] as number[]);
          const warmCatMs = median(warm["cat-oneway"] as number[]);
          warmShare = (2 * mib) / (warmEchoMs / 1000) / (mib / (warmCatMs / 1000));
        }
        const echo = got["session-echo"] as BulkMeasurement[];
        const cat = got["cat-oneway"] as BulkMeasurement[];
        const echoMs = median(echo.map((m) => m.ms));
        const catMs = median(cat.map((m) => m.ms));
        const agentPeaks = echo.map((m) => m.agentPeakRss).filter((x): x is number => x !== undefined);
        const result: BulkResult = {
          connector: t.name,
          mib,
          echoMs,
          catMs,
          echoMiBs: (2 * mib) / (echoMs / 1000),
          catMiBs: mib / (catMs / 1000),
          clientRssRatio: Math.max(...echo.map((m) => m.clientPeakRss)) / base.bytes,
          clientRssGrowthRatio: Math.max(...echo.map((m) => m.clientPeakRss - m.clientBaseRss)) / base.bytes,
          agentRssRatio: agentPeaks.length > 0 ? Math.max(...agentPeaks) / base.bytes : undefined,
          warmShare,
        };
        results.push(result);
        rows.push(
          {
            name: `bulk ${mib} MiB echo`,
            connector: t.name,
            carrier: "session",
            inFlight: 1,
            medianMs: echoMs,
            p90Ms: Math.max(...echo.map((m) => m.ms)),
            callsPerSec: 1000 / echoMs,
          },
          {
            name: `bulk ${mib} MiB cat`,
            connector: t.name,
            carrier: "raw",
            inFlight: 1,
            medianMs: catMs,
            p90Ms: Math.max(...cat.map((m) => m.ms)),
            callsPerSec: 1000 / catMs,
          },
        );
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return { rows, results };
}

/** The bulk table and issue 16's targets (≥ 50 % of the raw channel, peak RSS ≤ 3× the payload). */
export function bulkReport(results: readonly BulkResult[]): string {
  const header = [
    "bulk",
    "MiB",
    "echo ms",
    "echo MiB/s (2×)",
    "cat MiB/s",
    "share",
    "client RSS ×",
    "growth ×",
    "agent RSS ×",
    "warm share",
  ];
  const body = results.map((r) => [
    r.connector,
    String(r.mib),
    r.echoMs.toFixed(0),
    r.echoMiBs.toFixed(0),
    r.catMiBs.toFixed(0),
    (r.echoMiBs / r.catMiBs).toFixed(2),
    r.clientRssRatio.toFixed(2),
    r.clientRssGrowthRatio.toFixed(2),
    r.agentRssRatio?.toFixed(2) ?? "?",
    r.warmShare?.toFixed(2) ?? "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  const out = [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line), ""];
  for (const r of results.filter((x) => x.mib === 64)) {
    const share = r.echoMiBs / r.catMiBs;
    const rssOk = r.clientRssRatio <= 3 && (r.agentRssRatio === undefined || r.agentRssRatio <= 3);
    out.push(
      `bulk: ${r.connector} 64 MiB echo moves ${share.toFixed(2)} of the raw channel's throughput (target ≥ 0.5) ${share >= 0.5 ? "✓" : "✗"}; peak RSS client ${r.clientRssRatio.toFixed(2)}×, agent ${r.agentRssRatio?.toFixed(2) ?? "?"}× the payload (target ≤ 3) ${rssOk ? "✓" : "✗"}`,
    );
    if (r.warmShare !== undefined) {
      out.push(
        `bulk: ${r.connector} 64 MiB echo, warm (transfer ${WARM_REPEAT} of ${WARM_REPEAT} in one process, echo and cat alike): ${r.warmShare.toFixed(2)} of the raw channel's throughput ${r.warmShare >= 0.5 ? "✓" : "✗"}`,
      );
    }
  }
  for (const r of results.filter((x) => x.mib >= 255)) {
    out.push(`bulk: ${r.connector} ${r.mib} MiB value round-tripped in ${(r.echoMs / 1000).toFixed(1)} s ✓`);
  }
  return out.join("\n");
}

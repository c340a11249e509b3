import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import { RemoteClient } from "@sremote/client";
import { sshConnector } from "@sremote/connector-ssh";
import type { RemoteLayout } from "@sremote/core";
import { CALL, type Plan } from "./rows.js";
import { type BenchRow, type BlockRunner, measureShuffled, nodeBlock, quantile, shuffle } from "./stats.js";

/** The peers the session carrier is compared with. */
export const PEERS = ["execnet", "mitogen"] as const;
export type PeerName = (typeof PEERS)[number];

const DRIVER = fileURLToPath(new URL("../peers/peer_driver.py", import.meta.url));

/** How to reach the benchmark's SSH server. */
export interface SshFacts {
  host: string;
  port: number;
  user: string;
  identity: string;
  knownHosts: string;
}

/**
 * An ssh_config whose `Host sremote-bench` is the benchmark's server, for the peers: both
 * start the system `ssh`, and this is how they are told the port, key and known_hosts.
 */
export async function writePeerSshConfig(dir: string, f: SshFacts): Promise<string> {
  const path = join(dir, "ssh_config");
  await writeFile(
    path,
    [
      "Host sremote-bench",
      `  HostName ${f.host}`,
      `  Port ${f.port}`,
      `  User ${f.user}`,
      `  IdentityFile ${f.identity}`,
      "  IdentitiesOnly yes",
      `  UserKnownHostsFile ${f.knownHosts}`,
      "  StrictHostKeyChecking yes",
      "  BatchMode yes",
      "",
    ].join("\n"),
  );
  return path;
}

/** bench/peers/peer_driver.py, driven one JSON line per request. */
export class PeerDriver {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: Interface;
  readonly #waiting: ((line: string) => void)[] = [];
  #stderr = "";

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    this.#lines = createInterface({ input: child.stdout });
    this.#lines.on("line", (line) => this.#waiting.shift()?.(line));
    child.stderr.on("data", (b: Buffer) => {
      this.#stderr = (this.#stderr + b.toString()).slice(-4000);
    });
  }

  /** Starts the driver with the local `python` (which must import execnet and mitogen). */
  static start(python: string, sshConfig: string, remotePython: string): PeerDriver {
    return new PeerDriver(spawn(python, [DRIVER, sshConfig, remotePython], { stdio: "pipe" }));
  }

  #request<T>(req: object): Promise<T> {
    return new Promise((resolve, reject) => {
      const onExit = () => reject(new Error(`peer driver exited: ${this.#stderr.trim()}`));
      this.#child.once("exit", onExit);
      this.#waiting.push((line) => {
        this.#child.off("exit", onExit);
        resolve(JSON.parse(line) as T);
      });
      this.#child.stdin.write(`${JSON.stringify(req)}\n`);
    });
  }

  /** (Re)connects `peer`; resolves with the ms from nothing to its first result. */
  async connect(peer: PeerName): Promise<number> {
    return (await this.#request<{ ms: number }>({ op: "connect", peer })).ms;
  }

  /** A block runner for `peer`, measured inside the driver. */
  runner(peer: PeerName): BlockRunner {
    return async (count, inFlight, latencies) => {
      const r = await this.#request<{ elapsedMs: number; latencies: number[] }>({
        op: "block",
        peer,
        count,
        inFlight,
        timed: latencies !== undefined,
      });
      if (latencies) for (const l of r.latencies) latencies.push(l);
      return r.elapsedMs;
    };
  }

  async close(): Promise<void> {
    await this.#request({ op: "close" }).catch(() => undefined);
    this.#child.stdin.end();
    this.#lines.close();
  }
}

/** What the peer comparison measured, per contender. */
export interface PeerResult {
  name: string;
  medianMs: number;
  callsPerSec: Record<number, number>;
  firstResultMs: number;
}

export const PEER_IN_FLIGHT = [1, 16, 64] as const;

/**
 * The session carrier (one connection, one agent) against execnet and mitogen over the same
 * sshd: `math.sqrt(2)` at 1, 16 and 64 in flight, in rounds whose order is shuffled each
 * time, and the time from nothing to the first result (a fresh connection each, alternating).
 */
export async function peerComparison(o: {
  facts: SshFacts;
  layout: RemoteLayout;
  remotePython: string;
  localPython: string;
  sshConfig: string;
  plan: Plan;
}): Promise<{ results: PeerResult[]; rows: BenchRow[] }> {
  const connectorOptions = {
    host: o.facts.host,
    port: o.facts.port,
    username: o.facts.user,
    privateKeyPath: o.facts.identity,
    knownHostsPath: o.facts.knownHosts,
    sshConfigPath: false as const,
  };
  const newClient = () =>
    new RemoteClient({
      connector: sshConnector(connectorOptions),
      python: o.remotePython,
      layout: o.layout,
      poolSize: 1,
    });
  const driver = PeerDriver.start(o.localPython, o.sshConfig, o.remotePython);
  const client = newClient();
  try {
    // Connections first (the agent is installed by the first session call).
    await client.call(CALL.module, CALL.function, CALL.args);
    const first: Record<string, number[]> = { session: [], execnet: [], mitogen: [] };
    const connectRounds = o.plan.peerConnects;
    process.stderr.write(`  peers: first result after connect, ${connectRounds} rounds…\n`);
    for (let r = 0; r < connectRounds; r++) {
      for (const name of shuffle(["session", ...PEERS])) {
        if (name === "session") {
          const t0 = performance.now();
          const c = newClient();
          await c.call(CALL.module, CALL.function, CALL.args);
          first.session?.push(performance.now() - t0);
          await c.close();
        } else {
          first[name]?.push(await driver.connect(name as PeerName));
        }
      }
    }
    const runners: Record<string, BlockRunner> = {
      session: nodeBlock(() => client.call(CALL.module, CALL.function, CALL.args)),
      execnet: driver.runner("execnet"),
      mitogen: driver.runner("mitogen"),
    };
    const byLevel: Record<number, Record<string, { medianMs: number; p90Ms: number; callsPerSec: number }>> = {};
    for (const inFlight of PEER_IN_FLIGHT) {
      process.stderr.write(`  peers: session, execnet, mitogen, ${inFlight} in flight…\n`);
      const rounds = 10;
      byLevel[inFlight] = await measureShuffled(runners, {
        rounds,
        perRound: Math.ceil(o.plan.peerCount / rounds),
        inFlight,
        warmup: o.plan.peerWarmup,
      });
    }
    const results: PeerResult[] = [];
    const rows: BenchRow[] = [];
    for (const name of ["session", ...PEERS]) {
      const callsPerSec: Record<number, number> = {};
      for (const inFlight of PEER_IN_FLIGHT) {
        const s = byLevel[inFlight]?.[name];
        if (!s) continue;
        callsPerSec[inFlight] = s.callsPerSec;
        rows.push({ name, connector: "ssh", carrier: name === "session" ? "session" : "peer", inFlight, ...s });
      }
      const f = (first[name] ?? []).sort((a, b) => a - b);
      rows.push({
        name: `${name} first result`,
        connector: "ssh",
        carrier: name === "session" ? "session" : "peer",
        inFlight: 1,
        medianMs: quantile(f, 0.5),
        p90Ms: quantile(f, 0.9),
        callsPerSec: 1000 / quantile(f, 0.5),
      });
      results.push({
        name,
        medianMs: byLevel[1]?.[name]?.medianMs ?? Number.NaN,
        callsPerSec,
        firstResultMs: quantile(f, 0.5),
      });
    }
    return { results, rows };
  } finally {
    await client.close();
    await driver.close();
  }
}

/** The peer table and the ratios issue 16 asks for (session against the better peer). */
export function peerReport(results: readonly PeerResult[]): string {
  const header = ["", "median ms", "calls/s @1", "@16", "@64", "first result ms"];
  const body = results.map((r) => [
    r.name,
    r.medianMs.toFixed(3),
    ...PEER_IN_FLIGHT.map((k) => (r.callsPerSec[k] ?? Number.NaN).toFixed(0)),
    r.firstResultMs.toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  const out = [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line), ""];
  const session = results.find((r) => r.name === "session");
  const peers = results.filter((r) => r.name !== "session");
  if (!session || peers.length === 0) return out.join("\n");
  const mark = (ok: boolean) => (ok ? "✓" : "✗");
  for (const k of PEER_IN_FLIGHT) {
    const best = Math.max(...peers.map((p) => p.callsPerSec[k] ?? 0));
    const ratio = (session.callsPerSec[k] ?? 0) / best;
    out.push(
      `peers: session calls/s / better peer's at ${k} in flight = ${ratio.toFixed(2)} (target ≥ 1.25) ${mark(ratio >= 1.25)}`,
    );
  }
  const bestMedian = Math.min(...peers.map((p) => p.medianMs));
  const latency = session.medianMs / bestMedian;
  out.push(
    `peers: session median / better peer's median = ${latency.toFixed(2)} (target ≤ 0.8) ${mark(latency <= 0.8)}`,
  );
  const firstOk = session.firstResultMs <= 150 && peers.every((p) => session.firstResultMs < p.firstResultMs);
  out.push(
    `peers: session first result after connect = ${session.firstResultMs.toFixed(0)} ms (${peers.map((p) => `${p.name} ${p.firstResultMs.toFixed(0)}`).join(", ")}; target ≤ 150 and below both) ${mark(firstOk)}`,
  );
  return out.join("\n");
}

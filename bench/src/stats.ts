/** One row of the benchmark's output. */
export interface BenchRow {
  /** `floor` for the raw echo loop; else what was measured (`session`, `file`, `seed-protocol`). */
  name: string;
  /** `local`, `ssh`, `newt`. */
  connector: string;
  /** `session`, `file`, or `floor`/`seed` for the baselines. */
  carrier: string;
  /** Calls kept in flight. */
  inFlight: number;
  medianMs: number;
  p90Ms: number;
  callsPerSec: number;
}

/** Latency percentiles and throughput of one measured operation. */
export type Stats = { medianMs: number; p90Ms: number; callsPerSec: number };

/** The q-quantile (0..1) of sorted numbers, by linear interpolation. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

/**
 * Runs `op` `count` times with `inFlight` calls outstanding (after `warmup` untimed calls)
 * and returns per-call latency percentiles and throughput.
 */
export async function measure(
  op: () => Promise<unknown>,
  options: { count: number; inFlight: number; warmup: number },
): Promise<Stats> {
  const { count, inFlight, warmup } = options;
  const m = await measureInterleaved({ op }, { rounds: 1, perRound: count, inFlight, warmup });
  return m.op as Stats;
}

/**
 * Measures several operations in alternating rounds (a, b, a, b…), so that a machine whose
 * speed drifts (other load, CPU frequency) affects each the same way: the ratio between
 * them is what the benchmark reports.
 */
export async function measureInterleaved(
  ops: Readonly<Record<string, () => Promise<unknown>>>,
  options: { rounds: number; perRound: number; inFlight: number; warmup: number },
): Promise<Record<string, Stats>> {
  const names = Object.keys(ops);
  const latencies = new Map<string, number[]>(names.map((n) => [n, []]));
  const elapsed = new Map<string, number>(names.map((n) => [n, 0]));
  for (const n of names) {
    await runConcurrently(
      ops[n] as () => Promise<unknown>,
      options.warmup,
      Math.min(options.inFlight, options.warmup),
      undefined,
    );
  }
  for (let r = 0; r < options.rounds; r++) {
    for (const n of names) {
      const started = performance.now();
      await runConcurrently(ops[n] as () => Promise<unknown>, options.perRound, options.inFlight, latencies.get(n));
      elapsed.set(n, (elapsed.get(n) as number) + performance.now() - started);
    }
  }
  const out: Record<string, Stats> = {};
  for (const n of names) {
    const l = (latencies.get(n) as number[]).sort((a, b) => a - b);
    out[n] = {
      medianMs: quantile(l, 0.5),
      p90Ms: quantile(l, 0.9),
      callsPerSec: ((options.rounds * options.perRound) / (elapsed.get(n) as number)) * 1000,
    };
  }
  return out;
}

async function runConcurrently(
  op: () => Promise<unknown>,
  count: number,
  inFlight: number,
  latencies: number[] | undefined,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const t0 = performance.now();
      await op();
      latencies?.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
}

/**
 * Runs `count` operations with `inFlight` outstanding, pushing each one's latency (ms) to
 * `latencies` when given; resolves with the elapsed ms. Lets operations measured in another
 * process (the peers' driver) take part in the same rounds as Node's own.
 */
export type BlockRunner = (count: number, inFlight: number, latencies: number[] | undefined) => Promise<number>;

/** A {@link BlockRunner} for an operation of this process. */
export function nodeBlock(op: () => Promise<unknown>): BlockRunner {
  return async (count, inFlight, latencies) => {
    const started = performance.now();
    await runConcurrently(op, count, inFlight, latencies);
    return performance.now() - started;
  };
}

/** A copy of `items` in random order (Fisher–Yates). */
export function shuffle<T>(items: readonly T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

/**
 * Like {@link measureInterleaved}, with block runners, in an order shuffled each round: no
 * contender always runs right after another (whose leftovers — a busy sshd, caches — it
 * would inherit).
 */
export async function measureShuffled(
  runners: Readonly<Record<string, BlockRunner>>,
  options: { rounds: number; perRound: number; inFlight: number; warmup: number },
): Promise<Record<string, Stats>> {
  const names = Object.keys(runners);
  const latencies = new Map<string, number[]>(names.map((n) => [n, []]));
  const elapsed = new Map<string, number>(names.map((n) => [n, 0]));
  for (const n of shuffle(names)) {
    await (runners[n] as BlockRunner)(options.warmup, Math.min(options.inFlight, options.warmup), undefined);
  }
  for (let r = 0; r < options.rounds; r++) {
    for (const n of shuffle(names)) {
      const ms = await (runners[n] as BlockRunner)(options.perRound, options.inFlight, latencies.get(n));
      elapsed.set(n, (elapsed.get(n) as number) + ms);
    }
  }
  const out: Record<string, Stats> = {};
  for (const n of names) {
    const l = (latencies.get(n) as number[]).sort((a, b) => a - b);
    out[n] = {
      medianMs: quantile(l, 0.5),
      p90Ms: quantile(l, 0.9),
      callsPerSec: ((options.rounds * options.perRound) / (elapsed.get(n) as number)) * 1000,
    };
  }
  return out;
}

/** Renders rows as an aligned text table. */
export function formatTable(rows: readonly BenchRow[]): string {
  const header = ["name", "connector", "carrier", "in flight", "median ms", "p90 ms", "calls/s"];
  const body = rows.map((r) => [
    r.name,
    r.connector,
    r.carrier,
    String(r.inFlight),
    r.medianMs.toFixed(3),
    Number.isNaN(r.p90Ms) ? "-" : r.p90Ms.toFixed(3),
    r.callsPerSec.toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 3 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

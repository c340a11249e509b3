import type { FaultRow } from "./soak-support.js";

/** What `soakCalls` is to do: the calls, and the faults injected between them. */
export interface SoakCallsOptions<F extends string> {
  /** How many calls, numbered 0 to calls - 1. */
  calls: number;
  /** How many calls are waited on at once (one worker each). */
  inFlight: number;
  /** The faults' mean spacing: each next fault comes ½ to 1½ times this many calls later. */
  faultEvery: number;
  /** The seeded generator that places the faults and picks each one among `faults`. */
  random: () => number;
  /** The connector's name in the fault summary. */
  connector: string;
  /** The faults to inject, in the fault summary's order. */
  faults: readonly F[];
  /** Call number i: a call that answers i. */
  call(i: number): Promise<number>;
  /** Injects `fault` and says how that went; a thrown error's code (or text) is its outcome instead. */
  inject(fault: F): Promise<string>;
  /** Runs after call number i has settled (e.g. to sample memory). */
  afterCall?(i: number): void;
}

/** How the calls of `soakCalls` settled, and how each fault's injections went. */
export interface SoakTally<F extends string> {
  /** Per call number, the value it was answered with, or -1 when it failed. */
  values: Int32Array;
  /** Failed calls by error code ("untyped" for an error without one). */
  errors: Map<string, number>;
  /** Calls that settled, answered or failed. */
  settled: number;
  /** Calls answered more than once. */
  duplicate: number;
  /** Calls answered with their own number. */
  answered: number;
  /** Calls answered with another call's number. */
  wrong: number;
  /** Calls that failed (the sum of `errors`). */
  failed: number;
  /** One fault summary row per fault, in the order of `faults`. */
  rows: Map<F, FaultRow>;
}

/**
 * The soak's loop: makes `calls` numbered calls with `inFlight` workers, a fault injected at
 * seeded random points in between, and tallies how every call settled. A call's error is
 * counted, never thrown: the soak's point is that each call settles exactly once.
 */
export async function soakCalls<F extends string>(options: SoakCallsOptions<F>): Promise<SoakTally<F>> {
  const { calls, faultEvery, random, faults } = options;
  const rows = new Map<F, FaultRow>(
    faults.map((f) => [f, { fault: f, connector: options.connector, injections: 0, outcomes: {} }]),
  );
  const values = new Int32Array(calls).fill(-1);
  const errors = new Map<string, number>();
  let settled = 0;
  let duplicate = 0;
  let next = 0;
  let nextFault = faultEvery / 2 + Math.floor(random() * faultEvery);
  const inject = async (fault: F) => {
    const row = rows.get(fault) as FaultRow;
    row.injections++;
    let outcome: string;
    try {
      outcome = await options.inject(fault);
    } catch (err) {
      outcome = (err as { code?: string }).code ?? String(err);
    }
    row.outcomes[outcome] = (row.outcomes[outcome] ?? 0) + 1;
  };
  const worker = async () => {
    while (next < calls) {
      const i = next++;
      if (i >= nextFault) {
        nextFault = i + faultEvery / 2 + Math.floor(random() * faultEvery);
        await inject(faults[Math.floor(random() * faults.length)] as F);
      }
      try {
        const value = await options.call(i);
        if (values[i] !== -1) duplicate++;
        values[i] = value;
      } catch (err) {
        const code = (err as { code?: string }).code ?? "untyped";
        errors.set(code, (errors.get(code) ?? 0) + 1);
      }
      settled++;
      options.afterCall?.(i);
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, worker));
  const answered = values.reduce((n, v, i) => n + (v === i ? 1 : 0), 0);
  const wrong = values.reduce((n, v, i) => n + (v !== -1 && v !== i ? 1 : 0), 0);
  const failed = [...errors.values()].reduce((a, b) => a + b, 0);
  return { values, errors, settled, duplicate, answered, wrong, failed, rows };
}

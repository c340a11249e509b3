import { type SremoteError, UsageError } from "@sremote/core";
import type { RemoteClient } from "./client.js";
import { inputError, type MapOptions, orderedMap, splitMapInput } from "./map.js";
import type { CallOptions } from "./options.js";

/** The outcome of one input of {@link ClientGroup.map}, or of one target of {@link ClientGroup.call}. */
export type GroupResult<T = unknown> =
  | {
      ok: true;
      /** The target (the group's name for a client) that answered. */
      target: string;
      /** The input's position (0-based); for `call`, the target's position in the group. */
      index: number;
      value: T;
      /** What the call printed (a failed call's output is on its `RemoteExecError`). */
      stdout: string;
      stderr: string;
      /** True when stdout or stderr was cut at the output limit. */
      truncated: boolean;
    }
  | {
      ok: false;
      /** The target that answered last (after a failover, the last one tried). */
      target: string;
      /** The input's position (0-based); for `call`, the target's position in the group. */
      index: number;
      error: SremoteError;
    };

/**
 * One {@link RemoteClient} per target (many hosts, or many accounts), used together:
 * `map` spreads inputs over all of them, `call` runs one call on each.
 *
 * ```ts
 * const group = new ClientGroup({ a: clientA, b: clientB });
 * for await (const r of group.map("math", "sqrt", [[1], [4], [9]])) {
 *   console.log(r.index, r.target, r.ok ? r.value : r.error.code);
 * }
 * await group.close();
 * ```
 */
export class ClientGroup {
  readonly #clients: ReadonlyMap<string, RemoteClient>;

  /** @param clients the clients by target name (an object, a `Map` or `[name, client]` pairs). */
  constructor(clients: Record<string, RemoteClient> | Iterable<readonly [string, RemoteClient]>) {
    const entries =
      clients != null && typeof (clients as Iterable<unknown>)[Symbol.iterator] === "function"
        ? [...(clients as Iterable<readonly [string, RemoteClient]>)]
        : Object.entries(clients ?? {});
    if (entries.length === 0) throw new UsageError("a ClientGroup needs at least one client");
    const map = new Map<string, RemoteClient>();
    for (const [name, client] of entries) {
      if (typeof name !== "string" || name === "")
        throw new UsageError("ClientGroup target names are non-empty strings");
      if (map.has(name)) throw new UsageError(`ClientGroup: target ${JSON.stringify(name)} appears twice`);
      if (!client || typeof client.call !== "function") {
        throw new UsageError(`ClientGroup: target ${JSON.stringify(name)} is not a RemoteClient`);
      }
      map.set(name, client);
    }
    this.#clients = map;
  }

  /** The target names, in the group's order. */
  get targets(): string[] {
    return [...this.#clients.keys()];
  }

  /** The client of `target`. @throws UsageError for an unknown target. */
  client(target: string): RemoteClient {
    const c = this.#clients.get(target);
    if (!c) throw new UsageError(`no target ${JSON.stringify(target)} in this group`);
    return c;
  }

  /**
   * Like {@link RemoteClient.map}, over every target: each input is answered once, by the
   * target with the most free room (calls in flight relative to its `slots`), in input order.
   * An input whose call failed before anything ran (`retryable`: the host unreachable, a
   * refused start) is tried on each other target before its failure is reported. Default
   * `concurrency`: twice the group's slots.
   */
  map<T = unknown>(
    module: string,
    fn: string,
    inputs: Iterable<unknown> | AsyncIterable<unknown>,
    options: MapOptions = {},
  ): AsyncIterable<GroupResult<T>> {
    const { concurrency, onProgress, signal, ...callOptions } = options;
    const members = [...this.#clients].map(([target, client]) => ({ target, client, inFlight: 0 }));
    const slots = members.reduce((n, m) => n + m.client.slots, 0);
    // The member with the lowest load, skipping those already tried for this input.
    const pick = (tried: ReadonlySet<string>) => {
      let best: (typeof members)[number] | undefined;
      for (const m of members) {
        if (tried.has(m.target)) continue;
        if (!best || m.inFlight / m.client.slots < best.inFlight / best.client.slots) best = m;
      }
      return best;
    };
    return orderedMap<GroupResult<T>>(inputs, {
      concurrency: concurrency ?? Math.max(2, 2 * slots),
      signal,
      onProgress,
      run: async (input, index, callSignal) => {
        const tried = new Set<string>();
        let last: GroupResult<T> | undefined;
        for (let m = pick(tried); m; m = pick(tried)) {
          tried.add(m.target);
          m.inFlight++;
          try {
            const { args, kwargs } = splitMapInput(input);
            const merged = kwargs ? { ...callOptions.kwargs, ...kwargs } : callOptions.kwargs;
            const r = await m.client.call<T>(module, fn, args, { ...callOptions, kwargs: merged, signal: callSignal });
            const { value, stdout, stderr, truncated } = r;
            return { ok: true, target: m.target, index, value, stdout, stderr, truncated };
          } catch (err) {
            const error = inputError(err);
            last = { ok: false, target: m.target, index, error };
            if (!error.retryable || callSignal.aborted) return last;
          } finally {
            m.inFlight--;
          }
        }
        return last as GroupResult<T>;
      },
    });
  }

  /** Runs `module.fn(args)` once on every target; one result per target, in the group's order. */
  async call<T = unknown>(
    module: string,
    fn: string,
    args: readonly unknown[] | Record<string, unknown> = [],
    options: CallOptions = {},
  ): Promise<GroupResult<T>[]> {
    return Promise.all(
      [...this.#clients].map(async ([target, client], index): Promise<GroupResult<T>> => {
        try {
          const { value, stdout, stderr, truncated } = await client.call<T>(module, fn, args, options);
          return { ok: true, target, index, value, stdout, stderr, truncated };
        } catch (err) {
          return { ok: false, target, index, error: inputError(err) };
        }
      }),
    );
  }

  /** Closes every client (see {@link RemoteClient.close}). */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    await Promise.all([...this.#clients.values()].map((c) => c.close(options)));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

import { localConnector } from "@sremote/connector-local";
import type { Connector, RemoteProcess } from "@sremote/core";

/**
 * The local connector, handing `record` every chunk written to a spawned process's stdin (the
 * chunk itself, by reference, before it is written), so a test can check how the session
 * carrier writes its frames.
 */
export function recordingConnector(record: (chunk: Uint8Array) => void): Connector {
  const local = localConnector();
  const spawn = async (argv: readonly string[], options?: Parameters<NonNullable<Connector["spawn"]>>[1]) => {
    const proc: RemoteProcess = await local.spawn(argv, options);
    const write = proc.stdin.write.bind(proc.stdin) as (chunk: Uint8Array, ...rest: unknown[]) => boolean;
    (proc.stdin as unknown as { write: typeof write }).write = (chunk, ...rest) => {
      record(chunk);
      return write(chunk, ...rest);
    };
    return proc;
  };
  return new Proxy(local, {
    get(target, prop) {
      if (prop === "spawn") return spawn;
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as Connector;
}

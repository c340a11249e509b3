import type { Connector, ConnectorCapabilities } from "@sremote/core";
import { it, type TestContext } from "vitest";

/** What a connector's `setup` function returns to the conformance suite. */
export interface ConformanceFixture {
  /** A new, unused connector instance. The suite closes it. */
  connector: Connector;
  /**
   * An existing, writable remote folder the suite may fill (absolute path on the remote
   * side). The suite works in a sub-folder it creates and removes itself.
   */
  scratchDir: string;
  /** Called after the suite closed the connector: remove the scratch folder, stop servers… */
  cleanup?: (() => Promise<void> | void) | undefined;
}

/** Creates a fresh {@link ConformanceFixture}; called once for the shared groups and again by lifecycle tests. */
export type ConformanceSetup = () => Promise<ConformanceFixture> | ConformanceFixture;

/** What every group's tests share. */
export interface GroupContext {
  /** The shared connector (valid inside tests and hooks). */
  readonly connector: Connector;
  /** The suite's own remote folder, inside the fixture's scratch folder. */
  readonly workDir: string;
  /** A fresh remote path in {@link GroupContext.workDir}; nothing exists there yet. */
  path(tag: string): string;
  /** The Python interpreter usable as an oracle remotely, or null when none works. */
  python(): Promise<string | null>;
  /** Seed for random data, from the suite's options. */
  readonly seed: number;
  /**
   * Declares a test with the suite's timeout. With `needs`, the test is skipped (and says
   * why) when the connector does not declare that capability.
   */
  test(
    title: string,
    fn: (t: TestContext) => Promise<void>,
    options?: { needs?: keyof ConnectorCapabilities | undefined },
  ): void;
  /**
   * Runs `fn` with a brand-new fixture from `setup`; closes its connector and runs its
   * cleanup afterwards, whatever happens.
   */
  fresh<T>(fn: (fixture: ConformanceFixture) => Promise<T>): Promise<T>;
}

/** Builds the `test` helper of a {@link GroupContext}. */
export function makeTest(timeoutMs: number, connector: () => Connector): GroupContext["test"] {
  return (title, fn, options = {}) => {
    it(
      title,
      async (t) => {
        const { needs } = options;
        if (needs !== undefined && !connector().capabilities[needs]) {
          t.skip(`capabilities.${needs} is false`);
        }
        await fn(t);
      },
      timeoutMs,
    );
  };
}

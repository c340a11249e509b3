import { randomBytes } from "node:crypto";
import { type Connector, type ConnectorCapabilities, UsageError } from "@sremote/core";
import { afterAll, beforeAll, describe } from "vitest";
import { execOk } from "../remote-tools.js";
import { cancellationGroup } from "./cancellation.js";
import type { ConformanceFixture, ConformanceSetup, GroupContext } from "./context.js";
import { makeTest } from "./context.js";
import { argvGroup, execGroup, stdinGroup } from "./exec.js";
import { fileModesGroup, filesGroup } from "./files.js";
import { concurrencyGroup, contractGroup, lifecycleGroup } from "./lifecycle.js";
import { spawnGroup } from "./spawn.js";

/**
 * The conformance groups, in the order they run. A group tied to a capability runs when the
 * connector declares it (and must then pass); its tests are reported as skipped otherwise.
 *
 * | group | covers | capability |
 * |---|---|---|
 * | `contract` | name, capabilities, `spawn` present exactly when declared, status | — |
 * | `files` | binary-safe round trips (0 B … 8 MiB), overwrite, missing files/parents, hostile names | — |
 * | `file-modes` | 0600 default, exact explicit modes whatever the umask | `fileModes` |
 * | `exec` | exit codes, signals, stderr, 8 MiB output, cwd, env, home, bad input | — |
 * | `argv` | hostile and 1,000 random argv elements arrive verbatim | — |
 * | `stdin` | exec's `stdin`: text, all bytes, 8 MiB | `stdin` |
 * | `cancellation` | `timeoutMs` → TIMEOUT, abort → ABORTED, the command's whole group ended | — |
 * | `spawn` | live streams, exit status, kill, 10 at once, 8 MiB through `cat` | `spawn` |
 * | `lifecycle` | status, close while busy, CLOSED after close, idempotent close, `await using` | — |
 * | `concurrency` | 50 parallel execs, 20 parallel file transfers | — |
 */
export const CONFORMANCE_GROUPS = [
  "contract",
  "files",
  "file-modes",
  "exec",
  "argv",
  "stdin",
  "cancellation",
  "spawn",
  "lifecycle",
  "concurrency",
] as const;

/** One conformance group's name: see {@link CONFORMANCE_GROUPS}. */
export type ConformanceGroup = (typeof CONFORMANCE_GROUPS)[number];

/** The capability each capability-bound group checks. */
export const GROUP_CAPABILITY: Readonly<Partial<Record<ConformanceGroup, keyof ConnectorCapabilities>>> = Object.freeze(
  {
    "file-modes": "fileModes",
    stdin: "stdin",
    spawn: "spawn",
  },
);

/** A group left out on purpose, with the reason shown in the test report. */
export interface ConformanceSkip {
  group: ConformanceGroup;
  /** Why: shown in the report. Required and non-empty. */
  reason: string;
}

/** Options of {@link describeConnectorConformance}. */
export interface ConformanceOptions {
  /** Timeout of each test and hook, in milliseconds (default 60,000). */
  timeoutMs?: number | undefined;
  /**
   * Groups not to run, each with a reason. A group bound to a capability the connector
   * declares cannot be skipped: the `contract` group fails if one is.
   */
  skip?: readonly ConformanceSkip[] | undefined;
  /** The remote Python used as an extra argv oracle (default `"python3"`; `false`: none). */
  python?: string | false | undefined;
  /** Seed of the random argv strings (default 1), so a failure can be reproduced. */
  seed?: number | undefined;
}

/** Checks the skip list; throws a {@link UsageError} naming the bad entry. */
export function checkSkips(skip: readonly ConformanceSkip[]): Map<ConformanceGroup, string> {
  const out = new Map<ConformanceGroup, string>();
  for (const entry of skip) {
    if (!(CONFORMANCE_GROUPS as readonly string[]).includes(entry?.group)) {
      throw new UsageError(
        `conformance: unknown group ${JSON.stringify(entry?.group)} in skip (groups: ${CONFORMANCE_GROUPS.join(", ")})`,
      );
    }
    if (typeof entry.reason !== "string" || entry.reason.trim() === "") {
      throw new UsageError(`conformance: skipping group "${entry.group}" needs a reason`);
    }
    if (entry.group === "contract") throw new UsageError('conformance: the "contract" group cannot be skipped');
    out.set(entry.group, entry.reason.trim());
  }
  return out;
}

const GROUP_BODIES: Record<ConformanceGroup, (ctx: GroupContext, skipped: readonly string[]) => void> = {
  contract: contractGroup,
  files: filesGroup,
  "file-modes": fileModesGroup,
  exec: execGroup,
  argv: argvGroup,
  stdin: stdinGroup,
  cancellation: cancellationGroup,
  spawn: spawnGroup,
  lifecycle: lifecycleGroup,
  concurrency: concurrencyGroup,
};

function checkFixture(fixture: ConformanceFixture): void {
  if (typeof fixture?.connector?.exec !== "function") {
    throw new UsageError("conformance: setup() must return { connector, scratchDir }");
  }
  if (typeof fixture.scratchDir !== "string" || !fixture.scratchDir.startsWith("/")) {
    throw new UsageError(`conformance: scratchDir must be an absolute remote path, got ${String(fixture.scratchDir)}`);
  }
}

async function dispose(fixture: ConformanceFixture): Promise<void> {
  try {
    await fixture.connector.close();
  } finally {
    await fixture.cleanup?.();
  }
}

/**
 * Declares the connector conformance suite (vitest `describe`/`it`) for one connector.
 * Call it at the top level of a test file:
 *
 * ```ts
 * describeConnectorConformance("local", async () => {
 *   const scratchDir = await mkdtemp(join(tmpdir(), "conf-"));
 *   return { connector: localConnector(), scratchDir, cleanup: () => rm(scratchDir, { recursive: true }) };
 * });
 * ```
 *
 * `setup` runs once for the shared groups and once more for each lifecycle test (which
 * closes its connector). Everything remote goes through the connector, with portable tools
 * only (`sh`, `printf`, `cat`, `od`, `stat`, `wc`, `mkdir`, `rm`, `sleep`; `python3` when
 * present). The suite works in a folder of its own inside `scratchDir` and removes it.
 * One group alone: {@link conformanceGroups}.
 *
 * @throws UsageError at declaration for a bad `skip` list.
 */
export function describeConnectorConformance(
  name: string,
  setup: ConformanceSetup,
  options: ConformanceOptions = {},
): void {
  declareSuite(name, setup, options, CONFORMANCE_GROUPS);
}

/** Declares one conformance group alone; see {@link conformanceGroups}. */
export type DescribeConformanceGroup = (name: string, setup: ConformanceSetup, options?: ConformanceOptions) => void;

/**
 * Each conformance group on its own (keyv's test-suite style), with the same `setup` and
 * options as {@link describeConnectorConformance}: for a connector under development, or
 * to give one group its own file, timeout or fixture.
 *
 * ```ts
 * conformanceGroups.files("mine", setup);
 * conformanceGroups.cancellation("mine", setup, { timeoutMs: 120_000 });
 * ```
 */
export const conformanceGroups: Readonly<Record<ConformanceGroup, DescribeConformanceGroup>> = Object.freeze(
  Object.fromEntries(
    CONFORMANCE_GROUPS.map((group) => [
      group,
      (name: string, setup: ConformanceSetup, options: ConformanceOptions = {}) =>
        declareSuite(`${name} (${group})`, setup, options, [group]),
    ]),
  ) as Record<ConformanceGroup, DescribeConformanceGroup>,
);

function declareSuite(
  name: string,
  setup: ConformanceSetup,
  options: ConformanceOptions,
  groups: readonly ConformanceGroup[],
): void {
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new UsageError(`conformance: timeoutMs must be a positive number, got ${timeoutMs}`);
  }
  const skips = checkSkips(options.skip ?? []);
  const seed = options.seed ?? 1;
  const pythonCommand = options.python ?? "python3";

  describe(`${name} connector conformance`, () => {
    let shared: ConformanceFixture | undefined;
    let workDir = "";
    let counter = 0;
    let pythonProbe: Promise<string | null> | undefined;
    const connector = (): Connector => {
      if (!shared) throw new Error("conformance: setup() did not complete");
      return shared.connector;
    };

    beforeAll(async () => {
      const fixture = await setup();
      checkFixture(fixture);
      shared = fixture;
      workDir = `${fixture.scratchDir.replace(/\/+$/, "")}/sremote-conformance-${randomBytes(4).toString("hex")}`;
      await execOk(fixture.connector, ["mkdir", workDir]);
    }, timeoutMs);

    afterAll(async () => {
      if (!shared) return;
      const fixture = shared;
      try {
        if (workDir) await execOk(fixture.connector, ["rm", "-rf", workDir]);
      } finally {
        await dispose(fixture);
      }
    }, timeoutMs);

    const ctx: GroupContext = {
      get connector() {
        return connector();
      },
      get workDir() {
        return workDir;
      },
      seed,
      path(tag) {
        counter++;
        return `${workDir}/${tag}-${counter}-${randomBytes(3).toString("hex")}`;
      },
      python() {
        if (pythonCommand === false) return Promise.resolve(null);
        pythonProbe ??= connector()
          .exec([pythonCommand, "-c", "import json, sys; sys.stdout.write('ok')"])
          .then(
            (r) => (r.exitCode === 0 && r.stdout === "ok" ? pythonCommand : null),
            () => null,
          );
        return pythonProbe;
      },
      test: makeTest(timeoutMs, connector),
      async fresh(fn) {
        const fixture = await setup();
        checkFixture(fixture);
        try {
          return await fn(fixture);
        } finally {
          await dispose(fixture);
        }
      },
    };

    for (const group of groups) {
      const reason = skips.get(group);
      const body = () => GROUP_BODIES[group](ctx, [...skips.keys()]);
      if (reason === undefined) describe(group, body);
      else describe.skip(`${group} — skipped: ${reason}`, body);
    }
  });
}

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { RunnerTestCase, RunnerTestFile, RunnerTestSuite } from "vitest";
import { describe, expect, it } from "vitest";
import { startVitest } from "vitest/node";

// The suite is itself under test: run it (through a nested vitest) against a small correct
// connector and against copies with one deliberate defect each, and check that exactly the
// tests that should notice each defect fail. Only the relevant groups run, to stay fast.
const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, "fixtures");

const selections: Record<string, string> = {
  none: "(contract|argv|file-modes) ",
  "joins-argv": "argv ",
  "ignores-mode": "file-modes ",
  "leader-only-kill": "cancellation timeoutMs",
  "phantom-spawn": "contract ",
  "skips-argv": "(contract|argv)",
  "skips-declared": "contract ",
};
const pattern = Object.entries(selections)
  .map(([flaw, groups]) => `mini\\[${flaw}\\] connector conformance ${groups}`)
  .join("|");

interface Outcome {
  passed: string[];
  failed: string[];
  skipped: string[];
}

function collect(tasks: (RunnerTestCase | RunnerTestSuite)[], path: string[], into: Map<string, Outcome>): void {
  for (const task of tasks) {
    if (task.type === "suite") {
      collect(task.tasks, [...path, task.name], into);
      continue;
    }
    const flaw = /^mini\[(.+)\]/.exec(path[0] ?? "")?.[1] ?? "?";
    const outcome = into.get(flaw) ?? { passed: [], failed: [], skipped: [] };
    into.set(flaw, outcome);
    const name = [...path.slice(1), task.name].join(" > ");
    if (task.result?.state === "pass") outcome.passed.push(name);
    if (task.result?.state === "fail") outcome.failed.push(name);
    if (task.mode === "skip") outcome.skipped.push(name);
  }
}

async function runFlawedSuites(): Promise<Map<string, Outcome>> {
  const exitCodeBefore = process.exitCode;
  const vitest = await startVitest(
    "test",
    [],
    {
      root: fixtures,
      config: false,
      watch: false,
      include: ["flawed.conformance.ts"],
      testNamePattern: pattern,
      // A reporter that prints nothing: the nested failures are expected.
      reporters: [{}],
    },
    {
      resolve: { conditions: ["@sremote/source"] },
      ssr: { resolve: { conditions: ["@sremote/source"] } },
    },
  );
  try {
    const files: RunnerTestFile[] = vitest.state.getFiles();
    expect(files.length).toBe(1);
    const file = files[0]!;
    expect(file.result?.errors ?? []).toEqual([]);
    const outcomes = new Map<string, Outcome>();
    collect(file.tasks, [], outcomes);
    return outcomes;
  } finally {
    await vitest.close();
    // The nested run sets the exit code when its tests fail, as they are meant to here.
    process.exitCode = exitCodeBefore;
  }
}

describe("describeConnectorConformance", () => {
  it("passes a correct connector and fails each deliberately flawed one where it should", async () => {
    const outcomes = await runFlawedSuites();
    const get = (flaw: string): Outcome => outcomes.get(flaw) ?? { passed: [], failed: [], skipped: [] };

    // The correct mini connector passes every selected test (and enough of them ran).
    expect(get("none").failed).toEqual([]);
    expect(get("none").passed.length).toBeGreaterThanOrEqual(14);

    // argv joined with spaces: hostile words are mangled.
    expect(get("joins-argv").failed).toEqual(
      expect.arrayContaining([
        "argv > hostile words arrive verbatim (printf oracle)",
        "argv > hostile words arrive byte for byte (od oracle)",
        "argv > 1,000 random hostile strings arrive verbatim, in batches of 100",
      ]),
    );

    // mode ignored: the default 0600 and explicit modes are wrong.
    expect(get("ignores-mode").failed).toEqual(
      expect.arrayContaining([
        "file-modes > putFile creates files 0600 by default",
        "file-modes > putFile applies mode 0755 exactly (not reduced by the umask)",
      ]),
    );

    // Only the top process killed on timeout: the background child leaves its late marker.
    expect(get("leader-only-kill").failed).toEqual([
      "cancellation > timeoutMs rejects TIMEOUT and abort rejects ABORTED; neither command nor its children keep running",
    ]);

    // capabilities.spawn declared without a spawn method.
    expect(get("phantom-spawn").failed).toEqual([
      "contract > has a name, boolean capabilities, and spawn exactly when capabilities.spawn",
    ]);

    // A group skipped through options is reported as skipped, with its reason.
    expect(get("skips-argv").failed).toEqual([]);
    expect(get("skips-argv").skipped).toContain(
      "argv — skipped: argv checked elsewhere > hostile words arrive verbatim (printf oracle)",
    );
    // Skipping the group of a declared capability is refused by the contract group.
    expect(get("skips-declared").failed).toEqual(["contract > skips no group whose capability it declares"]);
  }, 120_000);
});

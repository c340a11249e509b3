import { describe, expect, it } from "vitest";
import { ensureAgent } from "../src/steps/agent.js";
import type { LocatedRun, ProbedRun, SurveyedRun } from "../src/steps/context.js";
import { prepareFolders } from "../src/steps/folders.js";
import { ensurePackage } from "../src/steps/package.js";
import { checkPython } from "../src/steps/python.js";

// The steps' context is typed in stages: a step's parameter names what must have run before
// it. `tsc` checks these lines (the package's typecheck includes test/): each expected error
// below becomes an "unused directive" error as soon as a step accepts an earlier stage.
describe("the install steps' context stages", () => {
  it("refuse a context an earlier step has not completed", () => {
    const located = {} as LocatedRun;
    const probed = {} as ProbedRun;
    const surveyed = {} as SurveyedRun;
    const calls = [
      () => checkPython(located),
      // @ts-expect-error folders needs the git commits the sources step resolves
      () => prepareFolders(probed),
      // @ts-expect-error the agent step needs the survey of the folders step
      () => ensureAgent(probed),
      // @ts-expect-error a package needs the venv the venv step made
      () => ensurePackage(surveyed, { kind: "spec", spec: "x" }),
    ];
    expect(calls).toHaveLength(4);
  });
});

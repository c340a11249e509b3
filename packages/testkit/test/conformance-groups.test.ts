import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CONFORMANCE_GROUPS, type ConformanceSetup, conformanceGroups } from "../src/index.js";
import { miniConnector } from "./fixtures/mini-connector.js";

// keyv-style: each group can be declared on its own. Two of them run here for real
// against the correct mini connector; the others are the same function with another body.

const setup: ConformanceSetup = async () => {
  const scratchDir = await mkdtemp(join(tmpdir(), "sremote-groups-"));
  return {
    connector: miniConnector("none", scratchDir),
    scratchDir,
    cleanup: () => rm(scratchDir, { recursive: true, force: true }),
  };
};

conformanceGroups.files("mini", setup);
conformanceGroups.argv("mini", setup, { seed: 7 });

describe("conformanceGroups", () => {
  it("has one declaration function per group, in the suite's order", () => {
    expect(Object.keys(conformanceGroups)).toEqual([...CONFORMANCE_GROUPS]);
    for (const group of CONFORMANCE_GROUPS) expect(typeof conformanceGroups[group]).toBe("function");
  });

  it("checks the skip list at declaration, as the whole suite does", () => {
    expect(() => conformanceGroups.exec("mini", setup, { skip: [{ group: "exec", reason: "" }] })).toThrow(
      /needs a reason/,
    );
  });
});

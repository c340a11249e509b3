import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// Rules for the repository's own test files, checked so that they keep holding.
const repo = fileURLToPath(new URL("../../..", import.meta.url));

function testFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name === "dist" || entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) testFiles(path, out);
    else if (entry.name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const files = ["packages", "remote", "examples"].flatMap((d) => testFiles(join(repo, d)));

describe("the repository's test files", () => {
  it("are found", () => {
    expect(files.length).toBeGreaterThan(40);
  });

  it("give every integration test an explicit time budget, never vitest's 5 s default", () => {
    // A slow machine (python3 starting in 41 ms, not 15) made two tests that relied on the
    // default fail a whole CI run.
    const without = files
      .filter((f) => f.endsWith(".integration.test.ts"))
      .filter((f) => !/vi\.setConfig\(\{[^}]*testTimeout:[^}]*hookTimeout:/.test(readFileSync(f, "utf8")))
      .map((f) => relative(repo, f));
    expect(without).toEqual([]);
  });
});

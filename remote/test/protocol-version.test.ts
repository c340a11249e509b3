import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PROTOCOL_VERSION } from "@sremote/protocol";
import { describe, expect, it } from "vitest";
import { AGENT_PROTOCOL_VERSION } from "../src/index.js";

// The protocol version has one constant per language: sremote_agent.PROTOCOL_VERSION in
// Python, and what the TypeScript packages export. A bump of one without the other would
// only show as VERSION_MISMATCH at run time.
const packageDir = fileURLToPath(new URL("../sremote_agent/", import.meta.url));
const ASSIGNMENT = /^[ \t]*PROTOCOL_VERSION[ \t]*=(?!=)[ \t]*(.*)$/gm;

function pythonAssignments(file: string): string[] {
  return [...readFileSync(packageDir + file, "utf8").matchAll(ASSIGNMENT)].map((m) => (m[1] ?? "").trim());
}

describe("the protocol version", () => {
  it("is the same in the Python agent, the agent package and @sremote/protocol", () => {
    const assigned = pythonAssignments("__init__.py");
    expect(assigned).toHaveLength(1);
    expect(assigned[0]).toMatch(/^\d+$/);
    const python = Number(assigned[0]);
    expect(python).toBe(AGENT_PROTOCOL_VERSION);
    expect(python).toBe(PROTOCOL_VERSION);
  });

  it("is defined by no other module of the Python agent", () => {
    const others = readdirSync(packageDir).filter((f) => f.endsWith(".py") && f !== "__init__.py");
    expect(others.length).toBeGreaterThan(5);
    for (const file of others) expect(pythonAssignments(file), file).toEqual([]);
  });
});

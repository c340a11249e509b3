import { describe, expect, it } from "vitest";
import { parseAgentInfo } from "../src/python-probe.js";

describe("parseAgentInfo", () => {
  it("takes the agent's JSON line after a login banner", () => {
    expect(parseAgentInfo('Welcome to the cluster\n{ not json\n{"python": "3.11.2", "codec": "c"}\n')).toEqual({
      python: "3.11.2",
      codec: "c",
    });
  });
  it("takes the last object when several lines parse, and ignores arrays and text", () => {
    expect(parseAgentInfo('{"a": 1}\n{"b": 2}\n[3]\nbye\n')).toEqual({ b: 2 });
    expect(parseAgentInfo("Welcome\nno json here\n")).toBeNull();
    expect(parseAgentInfo("")).toBeNull();
  });
});

import { describe, expect, it } from "vitest";
import { formatTarget, parseTarget } from "../src/index.js";

describe("parseTarget", () => {
  it.each([
    ["local:", { kind: "local" }],
    ["local", { kind: "local" }],
    ["local:/srv/sremote", { kind: "local", endpointDir: "/srv/sremote" }],
    ["ssh://alice@login.example.org", { kind: "ssh", user: "alice", host: "login.example.org" }],
    ["ssh://alice@127.0.0.1:2222", { kind: "ssh", user: "alice", host: "127.0.0.1", port: 2222 }],
    ["ssh://[::1]:22", { kind: "ssh", host: "::1", port: 22 }],
    ["ssh://perlmutter", { kind: "ssh", host: "perlmutter" }],
    ["newt://cori", { kind: "newt", machine: "cori" }],
    ["sfapi://perlmutter", { kind: "sfapi", machine: "perlmutter" }],
  ])("parses %s", (text, expected) => {
    expect(parseTarget(text)).toEqual(expected);
  });

  it.each([
    "",
    "local:relative",
    "ssh://",
    "ssh://host:0",
    "ssh://host:70000",
    "ssh://a b",
    "http://x",
    "newt://Cori!",
    "cori",
  ])("rejects %j with INVALID_TARGET", (text) => {
    expect(() => parseTarget(text)).toThrow(expect.objectContaining({ code: "INVALID_TARGET" }));
  });

  it("formats back", () => {
    for (const t of ["local:", "local:/x", "ssh://u@h:2", "ssh://[::1]", "newt://cori", "sfapi://perlmutter"]) {
      expect(formatTarget(parseTarget(t))).toBe(t);
    }
  });
});

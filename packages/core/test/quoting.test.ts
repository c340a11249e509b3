import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { shCommand, shJoin, shQuote } from "../src/index.js";

// The real shell is the oracle: every word must come back verbatim as one argv element.
function roundTrip(words: string[]): string[] {
  const out = execFileSync("/bin/sh", ["-c", `${shJoin(["printf", "%s\\0", ...words])}`], { encoding: "utf8" });
  return out.split("\0").slice(0, -1);
}

describe("shQuote", () => {
  it("leaves safe words bare and quotes the rest", () => {
    expect(shQuote("abc/def-1.txt")).toBe("abc/def-1.txt");
    expect(shQuote("")).toBe("''");
    expect(shQuote("a b")).toBe("'a b'");
    expect(shQuote("it's")).toBe(`'it'\\''s'`);
  });

  it("passes hostile words through /bin/sh verbatim", () => {
    const hostile = [
      "",
      " ",
      "a b",
      "'",
      '"',
      "''",
      "$(touch /tmp/pwned)",
      "`id`",
      "; rm -rf /",
      "a\nb",
      "\t",
      "-n",
      "--",
      "*",
      "~",
      "$HOME",
      "\\",
      "é✓😀",
      "!",
      "a&b|c>d<e",
      "{a,b}",
    ];
    expect(roundTrip(hostile)).toEqual(hostile);
  });

  it("survives random strings", () => {
    const words: string[] = [];
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 300; i++) {
      const len = rand() % 12;
      let w = "";
      for (let j = 0; j < len; j++) w += String.fromCharCode(1 + (rand() % 126));
      words.push(w);
    }
    expect(roundTrip(words)).toEqual(words);
  });

  it("rejects NUL bytes with a usage error", () => {
    expect(() => shQuote("a\0b")).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });
});

describe("shCommand", () => {
  it("applies cwd and env without letting values escape", () => {
    const line = shCommand(["sh", "-c", 'printf "%s|%s" "$PWD" "$X"'], { cwd: "/tmp", env: { X: "$(echo no) 'q'" } });
    expect(execFileSync("/bin/sh", ["-c", line], { encoding: "utf8" })).toBe("/tmp|$(echo no) 'q'");
  });

  it("rejects bad variable names", () => {
    expect(() => shCommand(["true"], { env: { "A=B": "x" } })).toThrow(/invalid environment variable name/);
  });
});

import { describe, expect, it } from "vitest";
import { checkSkips, HOSTILE_WORDS, largeText, parseOdHex, randomHostileStrings, seededRandom } from "../src/index.js";

describe("randomHostileStrings", () => {
  it("is deterministic per seed and differs between seeds", () => {
    expect(randomHostileStrings(50, 3)).toEqual(randomHostileStrings(50, 3));
    expect(randomHostileStrings(50, 3)).not.toEqual(randomHostileStrings(50, 4));
    expect(randomHostileStrings(0)).toEqual([]);
  });

  it("gives valid argv elements that are hostile: no NUL, no lone surrogate, but quotes, newlines, dashes, empties", () => {
    const words = randomHostileStrings(1000, 1);
    expect(words).toHaveLength(1000);
    for (const w of words) {
      expect(w.includes("\0")).toBe(false);
      // Well-formed UTF-16: encoding to UTF-8 and back changes nothing.
      expect(Buffer.from(w).toString()).toBe(w);
      expect([...w].length).toBeLessThanOrEqual(41);
    }
    const some = (re: RegExp) => words.filter((w) => re.test(w)).length;
    expect(some(/^$/)).toBeGreaterThan(5);
    expect(some(/^-/)).toBeGreaterThan(50);
    expect(some(/'/)).toBeGreaterThan(50);
    expect(some(/\n/)).toBeGreaterThan(50);
    expect(some(/[\u{10000}-\u{10ffff}]/u)).toBeGreaterThan(20);
    expect(() => randomHostileStrings(-1)).toThrow(RangeError);
  });

  it("HOSTILE_WORDS cover the classic injection shapes, harmlessly", () => {
    for (const w of ["", "'", '"', "a\nb", "$(echo injected)", "`id`", "; echo injected", "*", "-n", "🎉"]) {
      expect(HOSTILE_WORDS).toContain(w);
    }
    // Injected by a broken connector, nothing may write files or delete anything.
    for (const w of HOSTILE_WORDS) expect(w).not.toMatch(/rm |touch |>[^&/]/);
  });
});

describe("seededRandom", () => {
  it("yields numbers in [0, 1)", () => {
    const r = seededRandom(42);
    for (let i = 0; i < 1000; i++) {
      const x = r();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });
});

describe("checkSkips", () => {
  it("accepts known groups with reasons", () => {
    expect(checkSkips([{ group: "spawn", reason: " no streams " }])).toEqual(new Map([["spawn", "no streams"]]));
  });

  it("refuses unknown groups, missing reasons and the contract group", () => {
    expect(() => checkSkips([{ group: "nope" as "files", reason: "x" }])).toThrow(/unknown group "nope"/);
    expect(() => checkSkips([{ group: "files", reason: "  " }])).toThrow(/needs a reason/);
    expect(() => checkSkips([{ group: "contract", reason: "x" }])).toThrow(/cannot be skipped/);
    expect(() => checkSkips([{ group: "files", reason: "" }])).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
  });
});

describe("parseOdHex and largeText", () => {
  it("parses od -An -tx1 output", () => {
    expect([...parseOdHex(" 00 ff 7a\n 0a\n")]).toEqual([0, 255, 0x7a, 10]);
  });

  it("makes printable text of the exact size, deterministically", () => {
    const t = largeText(100_000);
    expect(t.length).toBe(100_000);
    expect(Buffer.byteLength(t)).toBe(100_000);
    expect(t).toBe(largeText(100_000));
  });
});

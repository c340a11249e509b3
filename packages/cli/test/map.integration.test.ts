import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it, vi } from "vitest";
import { EXIT, main } from "../src/index.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const dir = mkdtempSync(join(tmpdir(), "sremote-cli-map-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI in-process; `stdin` becomes its standard input. */
async function run(
  argv: string[],
  stdin?: string,
  signal?: AbortSignal,
): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: stdin === undefined ? undefined : Readable.from([stdin]),
  };
  const status = await main(argv, io, signal);
  return { status, stdout, stderr };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("sremote map local:", () => {
  it("prints one JSON line per input in order, failures included, and exits 1 when any failed", async () => {
    const inputs = file(
      "mixed.jsonl",
      ["[16]", "[-1]", "", "{bad", "9", '{"x": 1}', '[{"$bigint":"4"}]', '["a", "b"]'].join("\n"),
    );
    const r = await run(["map", "local:", "math.sqrt", "--inputs", inputs, "--concurrency", "3"]);
    expect(r.status).toBe(EXIT.remoteFailed);
    const lines = r.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(7); // the blank line is no input
    expect(lines[0]).toEqual({ ok: true, value: 4 });
    expect(lines[1]).toMatchObject({ ok: false, error: { code: "REMOTE_EXEC", type: "ValueError" } });
    expect(lines[2]).toMatchObject({
      ok: false,
      error: { code: "INVALID_ARGUMENT", message: expect.stringContaining("input line 4 is not JSON") },
    });
    expect(lines[3]).toEqual({ ok: true, value: 3 }); // a bare value is the only argument
    expect(lines[4]).toMatchObject({ ok: false, error: { type: "TypeError" } }); // kwargs: sqrt takes none
    expect(lines[5]).toEqual({ ok: true, value: 2 }); // tagged JSON
    expect(lines[6]).toMatchObject({ ok: false, error: { type: "TypeError" } }); // two arguments
    expect(r.stderr).toContain("4 of 7 inputs failed");
  });

  it("reads --inputs - from stdin and answers 1,000 inputs in order over 2 sessions, exit 0", async () => {
    const n = 1_000;
    const text = Array.from({ length: n }, (_, i) => `[${i}]`).join("\n");
    const r = await run(
      ["map", "local:", "operator.neg", "--inputs", "-", "--sessions", "2", "--concurrency", "16"],
      `${text}\n`,
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(EXIT.ok);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(n);
    const wrong = lines.filter((l, i) => l !== JSON.stringify({ ok: true, value: i === 0 ? 0 : -i }));
    expect(wrong).toEqual([]);
  });

  it("keeps what each input printed on its line, and reports a cut", async () => {
    const inputs = file("print.jsonl", '["short"]\n["a longer line"]\n[0]\n');
    const r = await run(["map", "local:", "builtins.print", "--inputs", inputs, "--output-limit", "8"]);
    expect(r.status).toBe(EXIT.ok);
    expect(
      r.stdout
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { ok: true, value: null, stdout: "short\n" },
      { ok: true, value: null, stdout: "a longer", truncated: true },
      { ok: true, value: null, stdout: "0\n" },
    ]);
    expect(r.stderr).toContain("the printed output of 1 input(s) was cut at 8 bytes per stream");
  });

  it("exits 2 on bad usage, before any call", async () => {
    const one = file("one.jsonl", "[1]\n");
    const cases = [
      ["map", "local:", "math.sqrt"], // no --inputs
      ["map", "local:", "math.sqrt", "--inputs", join(dir, "missing.jsonl")],
      ["map", "local:", "math.sqrt", "--inputs", one, "--concurrency", "0"],
      ["map", "local:", "math.sqrt", "--inputs", one, "--sessions", "x"],
      ["map", "local:", "math.sqrt", "--inputs", one, "--slurm", "nodes=two"],
      ["map", "local:", "nodot", "--inputs", one],
    ];
    for (const argv of cases) {
      const r = await run(argv);
      expect({ argv, status: r.status, stdout: r.stdout }).toEqual({ argv, status: EXIT.usage, stdout: "" });
    }
  });

  it("stops at the first failure that no input can escape (an unmet --require), exit 3", async () => {
    const inputs = file("many.jsonl", `${Array.from({ length: 500 }, (_, i) => `[${i}]`).join("\n")}\n`);
    const r = await run(["map", "local:", "math.sqrt", "--inputs", inputs, "--require", "no_such_dist_q>=1"]);
    expect(r.status).toBe(EXIT.setup);
    const lines = r.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.length).toBeLessThan(20); // the window, not the 500 inputs
    expect(lines[0]).toMatchObject({ ok: false, error: { code: "MODULES" } });
    for (const l of lines) expect(["MODULES", "ABORTED"]).toContain(l.error.code);
    expect(r.stderr).toMatch(/map stopped after \d+ results: .*no_such_dist_q.*\[MODULES\]/);
  });

  it("interrupted (Ctrl-C): the inputs read get their lines (ABORTED), the rest are not read, exit 130", async () => {
    const inputs = file("slow.jsonl", `[0]\n${"[30]\n".repeat(50)}`);
    const controller = new AbortController();
    let stdout = "";
    const io = {
      stdout: {
        write: (s: string) => {
          stdout += s;
          if (stdout.includes('"ok":true')) setTimeout(() => controller.abort(), 100);
          return true;
        },
      },
      stderr: { write: () => true },
    };
    const status = await main(["map", "local:", "time.sleep", "--inputs", inputs], io, controller.signal);
    expect(status).toBe(EXIT.interrupted);
    const lines = stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ ok: true, value: null });
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.length).toBeLessThanOrEqual(3); // the window (2), not the 51 inputs
    for (const l of lines.slice(1)) expect(l.error.code).toBe("ABORTED");
  });

  it("a per-input --timeout fails that input only", async () => {
    const inputs = file("sleep.jsonl", "[0]\n[30]\n[0]\n");
    const r = await run(["map", "local:", "time.sleep", "--inputs", inputs, "--timeout", "1500", "--sessions", "2"]);
    expect(r.status).toBe(EXIT.remoteFailed);
    expect(
      r.stdout
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l)),
    ).toMatchObject([
      { ok: true, value: null },
      { ok: false, error: { code: "TIMEOUT" } },
      { ok: true, value: null },
    ]);
  });
});

describe("sremote call: output beyond the limit is reported, never cut silently", () => {
  // 9,000,001 bytes printed: over the agent's default 8 MiB (8,388,608) per stream.
  const PRINT = "print('x' * 9_000_000)";

  it("cuts at 8 MiB by default with a notice on stderr, exit 0", async () => {
    const r = await run(["call", "local:", "builtins.exec", PRINT]);
    expect(r.status).toBe(EXIT.ok);
    expect(r.stdout.length).toBe(8 * 1024 * 1024);
    expect(r.stderr).toMatch(/output was cut at 8388608 bytes per stream \(the default limit\).*--output-limit/);
  });

  it("--output-limit raises or lowers the limit; --json says truncated", async () => {
    const print3k = "print('y' * 3000)"; // 3,001 bytes with the newline
    const cutJson = await run(["call", "local:", "builtins.exec", print3k, "--output-limit", "2k", "--json"]);
    expect(JSON.parse(cutJson.stdout)).toMatchObject({ ok: true, truncated: true, stdout: "y".repeat(2048) });
    expect(cutJson.stderr).toContain("cut at 2048 bytes per stream; raise it with --output-limit");
    const whole = await run(["call", "local:", "builtins.exec", print3k, "--output-limit", "4k", "--json"]);
    const out = JSON.parse(whole.stdout);
    expect(out).toMatchObject({ ok: true, truncated: false });
    expect(out.stdout.length).toBe(3001);
    expect(whole.stderr).toBe("");
    // A call that printed too much and then raised says so too.
    const raised = await run([
      "call",
      "local:",
      "builtins.exec",
      `${print3k}; raise ValueError('boom')`,
      "--output-limit",
      "1k",
      "--json",
    ]);
    expect(raised.status).toBe(EXIT.remoteFailed);
    const failed = JSON.parse(raised.stdout);
    expect(failed).toMatchObject({ ok: false, truncated: true, error: { type: "ValueError" } });
    expect(failed.stdout.length).toBe(1024);
    expect(raised.stderr).toContain("cut at 1024 bytes per stream");
    expect((await run(["call", "local:", "math.sqrt", "4", "--output-limit", "-5"])).status).toBe(EXIT.usage);
  });
});

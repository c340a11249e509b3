import { execFileSync, spawnSync } from "node:child_process";
import { describe, expect, it, vi } from "vitest";
import { parseMarker, wrapCommand } from "../src/index.js";

// Each check starts python3 (the oracle) several times: on a loaded machine that takes
// longer than vitest's 5 s default.
vi.setConfig({ testTimeout: 30_000 });

/**
 * NEWT (a Django service) split `executable` into argv with Python's `shlex.split`: the
 * oracle is Python's own, not the NEWT double's splitter (a mistake shared by the double
 * and the connector would go unseen).
 */
function splitLikeNewt(executable: string): string[] {
  const out = execFileSync(
    "python3",
    ["-c", "import json, shlex, sys; sys.stdout.write(json.dumps(shlex.split(sys.argv[1])))", executable],
    { encoding: "utf8" },
  );
  return JSON.parse(out) as string[];
}

// The real /bin/sh is the oracle: run the wrapper exactly as NEWT would (word-split the
// executable, start argv) and check what comes back.
function runLikeNewt(executable: string, input?: string) {
  const [file, ...args] = splitLikeNewt(executable);
  const r = spawnSync(file as string, args, { encoding: "utf8", input });
  return { stdout: r.stdout, stderr: r.stderr };
}

describe("wrapCommand", () => {
  it("reports real exit statuses through the marker", () => {
    for (const [argv, code] of [
      [["/bin/false"], 1],
      [["/bin/sh", "-c", "exit 42"], 42],
      [["/bin/true"], 0],
    ] as const) {
      const w = wrapCommand({ argv });
      const out = runLikeNewt(w.executable);
      const m = parseMarker(out.stderr, w.nonce);
      expect(m).toEqual({ found: true, exitCode: code, stderr: "" });
    }
  });

  it("passes hostile argv, cwd and env through verbatim", () => {
    const words = ["a b", "'", '"', "$(touch /tmp/pwned-newt)", "`id`", "; rm -rf /", "a\nb", "", "*", "é✓"];
    const w = wrapCommand({
      argv: ["/usr/bin/printf", "%s\\0", ...words],
      cwd: "/tmp",
      env: { SREMOTE_X: "it's $HOME" },
    });
    const out = runLikeNewt(w.executable);
    expect(out.stdout.split("\0").slice(0, -1)).toEqual(words);
    const env = wrapCommand({
      argv: ["/bin/sh", "-c", 'printf %s "$SREMOTE_X"; pwd'],
      cwd: "/tmp",
      env: { SREMOTE_X: "it's $HOME" },
    });
    expect(runLikeNewt(env.executable).stdout).toBe("it's $HOME/tmp\n");
  });

  it("gives back stderr exactly as written, with or without a trailing newline", () => {
    for (const text of ["", "x", "x\n", "x\n\n", "line1\nline2"]) {
      const w = wrapCommand({ argv: ["/bin/sh", "-c", 'printf %s "$1" >&2', "sh", text] });
      const m = parseMarker(runLikeNewt(w.executable).stderr, w.nonce);
      expect(m).toEqual({ found: true, exitCode: 0, stderr: text });
    }
  });

  it("reads stdin from /dev/null when none is given, so nothing waits for input", () => {
    const w = wrapCommand({ argv: ["/bin/cat"] });
    const out = runLikeNewt(w.executable, "should not be read");
    expect(out.stdout).toBe("");
    expect(parseMarker(out.stderr, w.nonce)).toMatchObject({ found: true, exitCode: 0 });
  });

  it("reads stdin from the uploaded file and deletes it afterwards", () => {
    const file = execFileSync("mktemp", { encoding: "utf8" }).trim();
    execFileSync("/bin/sh", ["-c", `printf 'in put' > ${file}`]);
    const w = wrapCommand({ argv: ["/bin/cat"], stdinFile: file });
    const out = runLikeNewt(w.executable);
    expect(out.stdout).toBe("in put");
    expect(spawnSync("test", ["-e", file]).status).toBe(1);
  });

  it("uses a fresh unguessable nonce each time", () => {
    const a = wrapCommand({ argv: ["/bin/true"] }).nonce;
    const b = wrapCommand({ argv: ["/bin/true"] }).nonce;
    expect(a).not.toBe(b);
    expect(a).toMatch(/^sremote-exit-[0-9a-f]{24}$/);
  });
});

describe("parseMarker", () => {
  const n = "sremote-exit-abc";
  it("finds nothing when the command was killed before the marker", () => {
    expect(parseMarker("partial output", n)).toEqual({ found: false, stderr: "partial output" });
    expect(parseMarker(`\n${n} x\n`, n).found).toBe(false);
  });
  it("takes the last marker and keeps what a background child wrote after it", () => {
    expect(parseMarker(`a\n${n} 3\nlate\n`, n)).toEqual({ found: true, exitCode: 3, stderr: "alate\n" });
    expect(parseMarker(`\n${n} 9\n\n${n} 7\n`, n)).toEqual({ found: true, exitCode: 7, stderr: `\n${n} 9\n` });
  });
  it("is not fooled by a command printing a different nonce", () => {
    expect(parseMarker("\nsremote-exit-zzz 0\n", n).found).toBe(false);
  });
});

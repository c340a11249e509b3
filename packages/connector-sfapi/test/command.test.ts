import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseKeyFile } from "../src/credentials.js";
import { parseMarker, wrapCommand } from "../src/index.js";

/** Runs an `executable` as SFAPI does: split into words without a shell (here: `/bin/sh -c <script>`). */
function runExecutable(executable: string) {
  const m = /^\/bin\/sh -c '((?:[^']|'\\'')*)'$/.exec(executable);
  if (!m) throw new Error(`unexpected executable ${executable}`);
  const script = (m[1] as string).replace(/'\\''/g, "'");
  const r = spawnSync("/bin/sh", ["-c", script], { encoding: "utf8" });
  return { stdout: r.stdout, stderr: r.stderr };
}

describe("wrapCommand / parseMarker", () => {
  it("reports the real exit status, stderr as written, and which side steps failed", () => {
    const dir = mkdtempSync(join(tmpdir(), "sfapi-wrap-"));
    try {
      const a = join(dir, "a b'c");
      writeFileSync(a, "x");
      const gone = join(dir, "gone");
      writeFileSync(gone, "y");
      const w = wrapCommand({
        argv: ["/bin/sh", "-c", 'printf "%s" "$1"; echo oops >&2; exit 42', "sh", "$HOME `x`"],
        steps: [
          { kind: "chmod", path: a, mode: 0o640 },
          { kind: "chmod", path: join(dir, "missing", "f"), mode: 0o600 },
          { kind: "rm", paths: [gone, join(dir, "never-there")] },
        ],
      });
      const r = runExecutable(w.executable);
      expect(r.stdout).toBe("$HOME `x`");
      const m = parseMarker(r.stderr, w.nonce);
      expect(m).toMatchObject({ found: true, exitCode: 42, stderr: "oops\n", failedSteps: [1] });
      expect(m.found && m.stepMessage).toMatch(/No such file/);
      expect(statSync(a).mode & 0o7777).toBe(0o640);
      expect(readdirSync(dir)).toEqual(["a b'c"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("finds no marker in output that only imitates one", () => {
    const w = wrapCommand({ argv: ["true"] });
    expect(parseMarker("\nsremote-exit-000000000000000000000000 0|\n", w.nonce).found).toBe(false);
  });
});

describe("parseKeyFile", () => {
  const pem = generateKeyPairSync("rsa", { modulusLength: 2048 })
    .privateKey.export({ type: "pkcs8", format: "pem" })
    .toString();
  it("reads the id line + PEM form", () => {
    expect(parseKeyFile(`abcdefghijklm\n${pem}`, "f").clientId).toBe("abcdefghijklm");
  });
  it("refuses a PEM without the id line, naming the form, not the key", () => {
    expect(() => parseKeyFile(pem, "f")).toThrow(/first line must be the client id/);
  });
});

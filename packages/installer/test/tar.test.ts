import { execFile } from "node:child_process";
import { chmod, mkdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { remoteScript } from "../src/remote-scripts.js";
import { packFolder } from "../src/tar.js";
import { SYSTEM_PYTHON, tempDir, writeTree } from "./helpers.js";

const run = promisify(execFile);
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

async function fixture() {
  const dir = await tempDir("tar");
  cleanups.push(dir.remove);
  const src = join(dir.path, "src");
  const longName = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(70)}.py`;
  await writeTree(src, {
    "pyproject.toml": "[project]\nname='x'\n",
    "pkg/__init__.py": "X = 1\n",
    "pkg/data.bin": "\u0000\u0001binary\u00ff",
    [longName]: "long = True\n",
    "ünïcode/名前.txt": "unicode path\n",
    ".git/HEAD": "ref: refs/heads/main\n",
    "pkg/__pycache__/x.pyc": "junk",
    "pkg/old.pyc": "junk",
  });
  await writeFile(join(src, "run.sh"), "#!/bin/sh\necho hi\n");
  await chmod(join(src, "run.sh"), 0o755);
  await symlink("pkg/__init__.py", join(src, "link.py"));
  await mkdir(join(src, "empty"));
  return { dir: dir.path, src, longName };
}

describe("packFolder", () => {
  it("packs what Python's tarfile extracts identically (long and unicode names, exec bits, links), without VCS and caches", async () => {
    const { dir, src, longName } = await fixture();
    const packed = await packFolder(src);
    const archive = join(dir, "a.tar");
    await writeFile(archive, packed.data);
    const out = join(dir, "out");
    // The very script the installer runs remotely (tarfile's data filter where available).
    await run(SYSTEM_PYTHON, ["-c", remoteScript("extract.py"), archive, out]);
    for (const rel of ["pyproject.toml", "pkg/__init__.py", "pkg/data.bin", longName, "ünïcode/名前.txt", "run.sh"]) {
      expect(await readFile(join(out, rel)), rel).toEqual(await readFile(join(src, rel)));
    }
    expect((await stat(join(out, "run.sh"))).mode & 0o111).not.toBe(0);
    expect((await stat(join(out, "pkg/__init__.py"))).mode & 0o111).toBe(0);
    expect(await readFile(join(out, "link.py"), "utf8")).toBe("X = 1\n");
    expect((await stat(join(out, "empty"))).isDirectory()).toBe(true);
    await expect(stat(join(out, ".git"))).rejects.toThrow();
    await expect(stat(join(out, "pkg/__pycache__"))).rejects.toThrow();
    await expect(stat(join(out, "pkg/old.pyc"))).rejects.toThrow();
    expect(packed.files).toBe(6);
    // GNU tar agrees that the archive is well-formed.
    const { stdout } = await run("tar", ["-tf", archive]);
    expect(stdout).toContain(longName);
  });

  it("hashes content, not timestamps", async () => {
    const { src } = await fixture();
    const a = await packFolder(src);
    await writeFile(join(src, "pkg/__init__.py"), "X = 1\n"); // same content, new mtime
    expect((await packFolder(src)).sha256).toBe(a.sha256);
    await writeFile(join(src, "pkg/__init__.py"), "X = 2\n");
    expect((await packFolder(src)).sha256).not.toBe(a.sha256);
  });
});

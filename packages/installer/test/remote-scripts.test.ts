import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { wrap } from "../src/remote-commands.js";
import { type RemoteScriptName, remoteScript, SCRIPT_NAMES, stripHeader } from "../src/remote-scripts.js";
import { SYSTEM_PYTHON } from "./helpers.js";

const run = promisify(execFile);
const folder = fileURLToPath(new URL("../scripts/", import.meta.url));
const names = readdirSync(folder).sort() as RemoteScriptName[];

describe("the installer's remote scripts", () => {
  it("are all loadable from the package's scripts/ folder, and sent without their comment header", () => {
    expect(names).toEqual([...SCRIPT_NAMES]);
    for (const name of names) {
      const text = remoteScript(name);
      expect(text.length, name).toBeGreaterThan(0);
      expect(text.startsWith("#"), `${name} starts with its header`).toBe(false);
      expect(text.endsWith("\n"), `${name} ends with a newline`).toBe(false);
    }
  });

  it("strips only the leading comment block", () => {
    expect(stripHeader("# shellcheck shell=sh\n# doc\n\nx=1\n# inner\ny=2\n")).toBe("x=1\n# inner\ny=2");
    expect(stripHeader("x=1\n")).toBe("x=1");
  });

  it("parse as POSIX sh (dash) and as Python", async () => {
    for (const name of names) {
      if (name.endsWith(".sh")) await run("sh", ["-n", "-c", remoteScript(name)]);
      else
        await run(SYSTEM_PYTHON, [
          "-c",
          "import sys; compile(sys.argv[1], sys.argv[2], 'exec')",
          remoteScript(name),
          name,
        ]);
    }
  });

  it("run as argv through sh -c: the wrapper passes the command's arguments on unchanged", async () => {
    const argv = wrap(["printf", "%s|", "a b", "", "$HOME", "'q'"], { preamble: "", preambleText: "", umask: "077" });
    const { stdout } = await run(argv[0] as string, argv.slice(1));
    expect(stdout).toBe("a b||$HOME|'q'|");
  });
});

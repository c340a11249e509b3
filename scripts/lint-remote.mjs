#!/usr/bin/env node
// Lints the code that runs on remote machines, which biome does not read: the installer's
// shell scripts and the agent's interpreter.sh with shellcheck (POSIX sh: remote accounts
// may have dash or ash) and the
// Python of the agent, its tests and the installer's scripts with pyflakes (Debian's
// shellcheck and pyflakes3). Missing tools skip this step with the reason, or fail it under
// SREMOTE_TEST_STRICT=1 (CI installs them).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const strict = process.env.SREMOTE_TEST_STRICT === "1";
const files = (dir, ext) =>
  readdirSync(join(root, dir))
    .filter((n) => n.endsWith(ext))
    .sort()
    .map((n) => join(dir, n));

const checks = [
  {
    tool: "shellcheck",
    pkg: "shellcheck",
    args: ["--shell=sh"],
    files: [...files("packages/installer/scripts", ".sh"), "remote/interpreter.sh"],
  },
  {
    tool: "pyflakes3",
    pkg: "pyflakes3",
    args: [],
    files: [
      ...files("packages/installer/scripts", ".py"),
      ...files("remote/sremote_agent", ".py"),
      ...files("remote/python-tests", ".py"),
    ],
  },
];

let failed = false;
for (const c of checks) {
  const path = ["/usr/bin", "/bin", "/usr/local/bin"].map((d) => join(d, c.tool)).find((p) => existsSync(p));
  if (!path) {
    const msg = `${c.tool} not found (Debian: apt-get install -y ${c.pkg})`;
    console.error(`${strict ? "FAIL" : "skip"}  ${c.tool}: ${msg}`);
    failed ||= strict;
    continue;
  }
  const r = spawnSync(path, [...c.args, ...c.files], { cwd: root, stdio: "inherit" });
  console.error(`${r.status === 0 ? "ok  " : "FAIL"}  ${c.tool}: ${c.files.length} files`);
  failed ||= r.status !== 0;
}
process.exit(failed ? 1 : 0);

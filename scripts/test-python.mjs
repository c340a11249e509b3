#!/usr/bin/env node
// Runs the Python agent's unittest suite (remote/python-tests) twice:
//   1. with the first `python3` on PATH — expected without msgpack, so the pure-Python
//      codec is the one tested (if that Python has msgpack, SREMOTE_CODEC=pure forces the
//      pure codec so that it is still covered);
//   2. with Debian's /usr/bin/python3, which must have python3-msgpack and python3-numpy,
//      so the msgpack C codec and numpy are tested. Without them this run is skipped, with
//      the reason in the summary (an error under SREMOTE_TEST_STRICT=1, as in CI); the first
//      run needs nothing but a python3 and always runs.
// Each run asserts (through SREMOTE_EXPECT_CODEC, checked by python-tests/test_codec.py) which
// codec it used. Exits non-zero on any failure.
import { spawnSync } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

const remoteDir = fileURLToPath(new URL("../remote/", import.meta.url));
const APT_PACKAGES = "python3-msgpack python3-numpy";

function fail(message) {
  console.error(`test-python: ${message}`);
  process.exit(1);
}

/** Runs python with `code`; returns trimmed stdout or null when it fails. */
function probe(python, code, env = process.env) {
  const r = spawnSync(python, ["-c", code], { cwd: remoteDir, env, encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

// The real executable behind the first python3 on PATH (pyenv's shim costs ~120 ms a start).
const pathPython = probe("python3", "import sys; print(sys.executable)");
if (!pathPython) fail("no python3 on PATH");
const strict = process.env.SREMOTE_TEST_STRICT === "1";
const systemPython = "/usr/bin/python3";
const runs = [{ label: "python3 on PATH (pure codec)", python: pathPython, codec: "pure" }];
const summary = [];
let failed = false;
let cSkipped = null;
if (!existsSync(systemPython))
  cSkipped = `${systemPython} not found (Debian: apt-get install -y python3 ${APT_PACKAGES})`;
else if (probe(systemPython, "import msgpack, numpy") === null) {
  cSkipped = `${systemPython} cannot import msgpack and numpy (Debian: apt-get install -y ${APT_PACKAGES})`;
} else runs.push({ label: "/usr/bin/python3 (msgpack C codec)", python: systemPython, codec: "c" });
if (cSkipped) {
  summary.push(`${strict ? "FAIL" : "skip"}  /usr/bin/python3 (msgpack C codec): ${cSkipped}`);
  failed ||= strict;
}
if (existsSync(systemPython) && realpathSync(pathPython) === realpathSync(systemPython)) {
  console.error(
    "test-python: the first python3 on PATH is /usr/bin/python3: its pure-codec run forces SREMOTE_CODEC=pure",
  );
}

for (const run of runs) {
  const env = { ...process.env, SREMOTE_EXPECT_CODEC: run.codec };
  delete env.SREMOTE_CODEC;
  if (run.codec === "pure" && probe(run.python, "import msgpack") !== null) {
    console.error(`test-python: ${run.python} has msgpack; forcing the pure codec with SREMOTE_CODEC=pure`);
    env.SREMOTE_CODEC = "pure";
  }
  const used = probe(run.python, "from sremote_agent import codec; print(codec.CODEC)", env);
  if (used !== run.codec) {
    summary.push(`FAIL  ${run.label}: the agent would use the ${used ?? "(unknown)"} codec, not ${run.codec}`);
    failed = true;
    continue;
  }
  const version = probe(run.python, "import sys; print('%d.%d.%d' % sys.version_info[:3])");
  console.error(`\n=== ${run.label}: ${run.python} (Python ${version}, codec ${used}) ===`);
  const t0 = Date.now();
  const r = spawnSync(run.python, ["-m", "unittest", "discover", "-s", "python-tests"], {
    cwd: remoteDir,
    env,
    stdio: "inherit",
    timeout: 15 * 60 * 1000,
  });
  const ok = r.status === 0;
  failed ||= !ok;
  const why = r.error ? ` (${r.error.message})` : r.signal ? ` (signal ${r.signal})` : "";
  summary.push(
    `${ok ? "ok  " : "FAIL"}  ${run.label}: codec ${used}  (${((Date.now() - t0) / 1000).toFixed(1)} s)${why}`,
  );
}
console.error(`\n=== python agent tests ===\n${summary.join("\n")}`);
process.exit(failed ? 1 : 0);

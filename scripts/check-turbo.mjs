#!/usr/bin/env node
// The suite's build and typecheck steps, through turbo as users run them, with the checks
// that make turbo trustworthy (issue 10, item 1):
//
//   node scripts/check-turbo.mjs build
//     `npm run build` while the process table is sampled: no chain of nested pnpm processes
//     deeper than 3 (a pnpm that re-enters the root's `turbo run` nests without end); then
//     `npm run build` again, which must be a full cache hit.
//   node scripts/check-turbo.mjs typecheck
//     every package's typecheck as one tsc program (what `npm run typecheck` checks, without
//     re-checking core in each package); then, in a copy of the work tree, a client typecheck
//     through turbo is cached, an export of core is renamed, and the client's typecheck must
//     run again and fail (TS2305) — not replay the cached success.
import { spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const MAX_PNPM_DEPTH = 3;

function fail(message) {
  console.error(`check-turbo: FAIL: ${message}`);
  process.exit(1);
}

/** Runs `npm run <script>` in `cwd`, echoing its output; resolves to { status, output }. */
function npmRun(script, cwd, { extraArgs = [], onTick } = {}) {
  return new Promise((resolve) => {
    const child = spawn("npm", ["run", "-s", script, ...(extraArgs.length ? ["--", ...extraArgs] : [])], {
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const take = (stream, sink) =>
      stream.on("data", (chunk) => {
        output += chunk;
        sink.write(chunk);
      });
    take(child.stdout, process.stdout);
    take(child.stderr, process.stderr);
    const timer = onTick ? setInterval(onTick, 150) : undefined;
    child.on("close", (status) => {
      if (timer) clearInterval(timer);
      resolve({ status, output });
    });
  });
}

/** Deepest chain of nested pnpm processes in the process table right now. */
function pnpmDepth() {
  const ps = spawnSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" });
  if (ps.status !== 0) return 0;
  const procs = new Map();
  for (const line of ps.stdout.split("\n")) {
    const m = line.match(/^\s*(\d+)\s+(\d+)\s+(.*)$/);
    if (m) procs.set(m[1], { ppid: m[2], isPnpm: /(^|[\s/])pnpm(\.c?js)?(@[\d.]+)?(\s|$)/.test(m[3]) });
  }
  let deepest = 0;
  for (const [pid] of procs) {
    let depth = 0;
    for (let p = procs.get(pid), hops = 0; p && hops < 200; p = procs.get(p.ppid), hops++) if (p.isPnpm) depth++;
    deepest = Math.max(deepest, depth);
  }
  return deepest;
}

function cachedSummary(output) {
  const m = output.match(/Cached:\s+(\d+) cached, (\d+) total/);
  return m ? { cached: Number(m[1]), total: Number(m[2]) } : null;
}

async function build() {
  let deepest = 0;
  const first = await npmRun("build", root, {
    onTick: () => {
      deepest = Math.max(deepest, pnpmDepth());
    },
  });
  if (first.status !== 0) fail("npm run build failed");
  console.error(`check-turbo: deepest pnpm process chain during the build: ${deepest}`);
  if (deepest > MAX_PNPM_DEPTH) fail(`pnpm processes nested ${deepest} deep (at most ${MAX_PNPM_DEPTH})`);
  const second = await npmRun("build", root);
  if (second.status !== 0) fail("the second npm run build failed");
  const s = cachedSummary(second.output);
  if (!s) fail("turbo printed no 'Cached: N cached, N total' line");
  if (s.cached !== s.total) fail(`the second build ran tasks again: ${s.cached} of ${s.total} cached`);
  console.error(`check-turbo: ok: the second build is a full cache hit (${s.cached}/${s.total})`);
}

/** A copy of the work tree (tracked and new files) that shares this tree's installed dependencies. */
function copyWorkTree() {
  const files = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: root,
    encoding: "utf8",
  });
  if (files.status !== 0) fail("git ls-files failed");
  const dest = mkdtempSync(join(tmpdir(), "sremote-turbo-check-"));
  for (const rel of files.stdout.split("\0")) {
    if (rel && existsSync(join(root, rel))) cpSync(join(root, rel), join(dest, rel), { recursive: false });
  }
  // Dependencies: the root node_modules is shared through a link; each package's own
  // node_modules holds only relative links (to the root store and to sibling packages).
  symlinkSync(join(root, "node_modules"), join(dest, "node_modules"));
  for (const group of ["packages", "examples"]) {
    for (const name of readdirSync(join(root, group))) {
      const nm = join(root, group, name, "node_modules");
      if (existsSync(nm))
        cpSync(nm, join(dest, group, name, "node_modules"), { recursive: true, verbatimSymlinks: true });
    }
  }
  for (const single of ["remote", "bench"]) {
    const nm = join(root, single, "node_modules");
    if (existsSync(nm)) cpSync(nm, join(dest, single, "node_modules"), { recursive: true, verbatimSymlinks: true });
  }
  spawnSync("git", ["init", "-q"], { cwd: dest });
  spawnSync("git", ["add", "-A"], { cwd: dest });
  return dest;
}

/**
 * Every workspace package's `typecheck` (src, tests, scripts), as one TypeScript program.
 * Each package's own `tsc -p` also checks the sources of the packages it imports (they
 * resolve to src/ through the @sremote/source condition), so `npm run typecheck` checked
 * core about fourteen times: 131 s on the 2-core VM against ~15 s for one program. Packages
 * whose compiler options differ from the shared ones (bench: vitest types) get their own run.
 */
function typecheckAllAtOnce() {
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  const listed = spawnSync("node", [join(root, "scripts", "pnpm.mjs"), "ls", "-r", "--depth", "-1", "--json"], {
    cwd: root,
    encoding: "utf8",
  });
  if (listed.status !== 0) fail(`pnpm ls failed: ${listed.stderr}`);
  const packages = JSON.parse(listed.stdout)
    .map((p) => p.path)
    .filter((dir) => dir.replace(/\/+$/, "") !== root.replace(/\/+$/, ""));
  const shared = JSON.stringify({ noEmit: true, allowImportingTsExtensions: false });
  const include = [];
  const separate = [];
  for (const dir of packages) {
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    if (!manifest.scripts?.typecheck) continue;
    const config = JSON.parse(readFileSync(join(dir, "tsconfig.json"), "utf8"));
    const rel = dir.slice(root.length).replace(/^\/+/, "");
    if (
      manifest.scripts.typecheck === "tsc -p tsconfig.json --noEmit" &&
      JSON.stringify(config.compilerOptions) === shared
    ) {
      for (const inc of config.include ?? []) include.push(`${rel}/${inc}`);
    } else separate.push(rel);
  }
  const file = join(root, `.tsconfig.typecheck-all.${process.pid}.json`);
  writeFileSync(
    file,
    JSON.stringify({ extends: "./tsconfig.base.json", compilerOptions: JSON.parse(shared), include }),
  );
  let failed;
  try {
    console.error(
      `check-turbo: one program for ${include.length} folders; on their own: ${separate.join(", ") || "none"}`,
    );
    const runs = [["-p", file], ...separate.map((rel) => ["-p", join(root, rel, "tsconfig.json"), "--noEmit"])];
    failed = runs.find(
      (args) => spawnSync(process.execPath, [tsc, ...args], { cwd: root, stdio: "inherit" }).status !== 0,
    );
  } finally {
    rmSync(file, { force: true });
  }
  if (failed) fail(`tsc ${failed.join(" ")} failed`);
}

async function typecheck() {
  typecheckAllAtOnce();
  const copy = copyWorkTree();
  try {
    const args = ["--filter=@sremote/client", "--output-logs=errors-only"];
    const before = await npmRun("typecheck", copy, { extraArgs: args });
    if (before.status !== 0) fail("the client's typecheck failed in the copy before any change");
    const again = await npmRun("typecheck", copy, { extraArgs: args });
    const cached = cachedSummary(again.output);
    if (again.status !== 0 || !cached || cached.cached !== cached.total) {
      fail("an unchanged client typecheck was not a cache hit");
    }
    // Rename an export of core that the client imports.
    const errorsTs = join(copy, "packages", "core", "src", "index.ts");
    const text = readFileSync(errorsTs, "utf8");
    if (!/\bUsageError\b/.test(text)) fail("core's index.ts no longer exports UsageError: update this check");
    writeFileSync(errorsTs, text.replace(/\bUsageError\b/g, "UsageErrorRenamed"));
    const after = await npmRun("typecheck", copy, { extraArgs: args });
    if (after.status === 0) fail("the client's typecheck passed after core stopped exporting UsageError (stale cache)");
    if (!/TS2305|TS2724/.test(after.output)) fail("the client's typecheck failed, but not with a missing export");
    console.error("check-turbo: ok: a changed core export fails the client's typecheck (no stale cache hit)");
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

const what = process.argv[2];
if (what === "build") await build();
else if (what === "typecheck") await typecheck();
else fail(`usage: ${dirname(process.argv[1])}/check-turbo.mjs build|typecheck`);

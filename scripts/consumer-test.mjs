#!/usr/bin/env node
// Consumer test: the packages as npm users meet them. Packs every public package with pnpm
// (its `prepack` builds a clean dist; `workspace:` ranges become real versions), checks the
// tarballs (LICENSE/README/dist/agent files, no tests; source maps resolve; dist imports only
// declared dependencies; files read via import.meta.url shipped), installs them with npm into
// an empty folder outside the workspace, then runs an ESM script, a CommonJS script
// (require(esm), Node >= 20.19), strict `tsc` under node16, bundler and a CommonJS `.cts`
// (nodenext), the packed `sremote` command, and publint + attw on every tarball. One line per
// check and a summary; exits 1 when any check fails. Temp folders are removed.
// About 100 s on a quiet 2-core machine (packing ~30-45 s, npm install ~15-45 s).
//
// Usage: node scripts/consumer-test.mjs [--keep]   (--keep leaves the temp folder for a look)
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { tmpdir } from "node:os";
import { join, posix, relative } from "node:path";
import { fileURLToPath } from "node:url";

const PUBLINT = "publint@0.3.25";
const ATTW = "@arethetypeswrong/cli@0.18.5";
// Our packages are ESM only. Node >= 20.19 (our `engines`) loads them with require() too, so
// "CJS resolves to ESM" is intended; attw's bundled TypeScript does not model require(esm).
const ATTW_FLAGS = ["--profile", "node16", "--ignore-rules", "cjs-resolves-to-esm", "--no-definitely-typed"];

const PACKAGE_SPEC = /^(@[a-z0-9~-][a-z0-9._~-]*\/)?[a-z0-9~-][a-z0-9._~-]*(\/[^\s]*)?$/;

const root = fileURLToPath(new URL("..", import.meta.url));
const fixtures = join(root, "scripts", "consumer");
const keep = process.argv.includes("--keep");
const started = Date.now();

/** Public workspace packages: name and folder. */
function publicPackages() {
  const dirs = [...readdirSync(join(root, "packages")).map((d) => join("packages", d)), "remote"];
  const found = [];
  for (const dir of dirs) {
    let pkg;
    try {
      pkg = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8"));
    } catch {
      continue;
    }
    if (!pkg.private) found.push({ name: pkg.name, dir, pkg });
  }
  return found;
}

/** Every file under `dir`, as POSIX paths relative to it. */
function listFiles(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) =>
      relative(dir, join(e.parentPath ?? e.path, e.name))
        .split("\\")
        .join("/"),
    );
}

const children = new Set();

/** Runs a command; resolves to { code, out } (stdout and stderr interleaved). Never rejects. */
function run(cmd, args, { cwd, env, timeoutMs = 120_000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    const timer = setTimeout(() => {
      out += `\n[consumer-test] timed out after ${timeoutMs} ms`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (error) => {
      out += `\n${error.message}`;
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code: code ?? (signal ? 128 : 1), out });
    });
  });
}

const results = [];

/** Records a check. `fn` returns { ok, detail?, out? }. */
async function check(name, fn) {
  const t0 = Date.now();
  let r;
  try {
    r = await fn();
  } catch (error) {
    r = { ok: false, detail: error instanceof Error ? error.message : String(error) };
  }
  const ms = Date.now() - t0;
  results.push({ name, ok: r.ok, detail: r.detail ?? "", ms });
  const mark = r.ok ? "ok  " : "FAIL";
  console.log(`${mark} ${name}${r.detail ? ` — ${r.detail}` : ""} (${(ms / 1000).toFixed(1)} s)`);
  if (!r.ok && r.out) console.log(indent(r.out.trim().split("\n").slice(-60).join("\n")));
  return r.ok;
}

const indent = (text) => text.replace(/^/gm, "    | ");

/** Runs `tasks` (functions returning promises) at most `limit` at a time. */
async function pool(tasks, limit) {
  const queue = [...tasks];
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) await queue.shift()();
  });
  await Promise.all(workers);
}

let temp;
function cleanUp() {
  for (const child of children) child.kill("SIGKILL");
  if (temp && !keep) rmSync(temp, { recursive: true, force: true });
}
for (const [sig, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
]) {
  process.on(sig, () => {
    console.error(`\n[consumer-test] ${sig}: cleaning up`);
    cleanUp();
    process.exit(code);
  });
}

async function main() {
  const [major, minor] = process.versions.node.split(".").map(Number);
  if (major < 20 || (major === 20 && minor < 19)) {
    console.error(`consumer-test needs Node >= 20.19 (require(esm)); this is ${process.versions.node}`);
    return 1;
  }
  temp = mkdtempSync(join(tmpdir(), "sremote-consumer-"));
  const tarDir = join(temp, "tarballs");
  const app = join(temp, "app");
  const tools = join(temp, "tools");
  for (const d of [tarDir, app, tools]) mkdirSync(d);
  const packages = publicPackages();
  console.log(`consumer test in ${temp}: ${packages.length} public packages`);

  writeFileSync(join(tools, "package.json"), `${JSON.stringify({ name: "tools", private: true }, null, 2)}\n`);
  const npmInstall = ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"];
  // Network-bound: overlaps the CPU-bound packing.
  const toolsReady = check(`npm install ${PUBLINT} ${ATTW}`, async () => {
    const r = await run("npm", [...npmInstall, PUBLINT, ATTW], { cwd: tools, timeoutMs: 120_000 });
    return { ok: r.code === 0, out: r.out };
  });

  // 1. pnpm pack, in dependency order (each prepack builds against its dependencies' dist).
  const filters = packages.flatMap((p) => ["--filter", p.name]);
  const packed = await check("pnpm pack (prepack builds dist)", async () => {
    const r = await run("node", ["scripts/pnpm.mjs", "-r", ...filters, "pack", "--pack-destination", tarDir], {
      cwd: root,
      timeoutMs: 150_000,
    });
    const count = readdirSync(tarDir).filter((f) => f.endsWith(".tgz")).length;
    return { ok: r.code === 0 && count === packages.length, detail: `${count} tarballs`, out: r.out };
  });
  if (!packed) {
    await toolsReady;
    return summary();
  }
  const tarballs = packages.map((p) => {
    const file = `${p.name.replace(/^@/, "").replace("/", "-")}-${p.pkg.version}.tgz`;
    return { ...p, file: join(tarDir, file) };
  });

  // Unpacked copies for the static checks below.
  const unpacked = join(temp, "unpacked");
  for (const t of tarballs) {
    t.root = join(unpacked, t.name.replace("/", "+"));
    mkdirSync(t.root, { recursive: true });
    await run("tar", ["xzf", t.file, "-C", t.root, "--strip-components=1"]);
    t.files = listFiles(t.root);
    t.manifest = JSON.parse(readFileSync(join(t.root, "package.json"), "utf8"));
  }

  await check("tarball contents", async () => {
    const problems = [];
    for (const t of tarballs) {
      const need = ["package.json", "LICENSE", "README.md", "dist/index.js", "dist/index.d.ts"];
      if (t.name === "@sremote/agent")
        need.push("interpreter.sh", "sremote_agent/__main__.py", "sremote_agent/codec_pure.py");
      if (t.pkg.bin) need.push(...Object.values(t.pkg.bin).map((b) => b.replace(/^\.\//, "")));
      for (const n of need) if (!t.files.includes(n)) problems.push(`${t.name}: no ${n}`);
      for (const n of t.files)
        if (/^(test|tests|vectors)\/|\.test\.|__pycache__|\.pyc$/.test(n)) problems.push(`${t.name}: ships ${n}`);
      if (JSON.stringify(t.manifest).includes("workspace:"))
        problems.push(`${t.name}: a workspace: range in package.json`);
    }
    return { ok: problems.length === 0, detail: problems.join("; ") || "LICENSE, README, dist, agent files; no tests" };
  });

  await check("source maps point at shipped files", async () => {
    const problems = [];
    let maps = 0;
    // Installed, the packages sit side by side in node_modules/@sremote/: a source outside its
    // own package (the CLI's bundle: `../../protocol/src/…`) must be in the sibling's tarball.
    const byDir = new Map(tarballs.map((t) => [t.name.replace(/^@sremote\//, ""), t]));
    for (const t of tarballs) {
      for (const f of t.files.filter((n) => n.endsWith(".map"))) {
        maps++;
        const { sources = [] } = JSON.parse(readFileSync(join(t.root, f), "utf8"));
        for (const src of sources) {
          if (/^bundled:/.test(src)) continue; // third-party code inside a bundle, named not linked
          const target = posix.normalize(posix.join(posix.dirname(f), src));
          const sibling = /^\.\.\/([^/]+)\/(.+)$/.exec(target);
          const owner = sibling ? byDir.get(sibling[1]) : t;
          if (!owner?.files.includes(sibling ? sibling[2] : target)) problems.push(`${t.name}: ${f} -> ${target}`);
        }
      }
    }
    return { ok: problems.length === 0, detail: problems.slice(0, 5).join("; ") || `${maps} maps` };
  });

  // Files a module reads next to itself at run time (`new URL("../scripts/x.sh", import.meta.url)`:
  // the agent's Python files, the installer's scripts) must be in the tarball.
  await check("files read through import.meta.url are shipped", async () => {
    const problems = [];
    let refs = 0;
    for (const t of tarballs) {
      for (const f of t.files.filter((n) => n.startsWith("dist/") && n.endsWith(".js"))) {
        const code = readFileSync(join(t.root, f), "utf8");
        for (const m of code.matchAll(/new URL\(\s*[`"']([^`"'$]*)[^`"']*[`"']\s*,\s*import\.meta\.url\s*\)/g)) {
          refs++;
          const target = posix.normalize(posix.join(posix.dirname(f), m[1]));
          const dir = target.endsWith("/") || m[1] === ".." || m[1] === "." || m[1] === "";
          const found = dir
            ? target === "./" || target === "." || t.files.some((n) => n.startsWith(target.replace(/\/?$/, "/")))
            : t.files.includes(target);
          if (!found) problems.push(`${t.name}: ${f} reads ${target}`);
        }
      }
    }
    return { ok: problems.length === 0, detail: problems.join("; ") || `${refs} references` };
  });

  // Every bare import in dist (.js and .d.ts) must be a dependency or peerDependency of the
  // tarball's package.json: a devDependency is missing for npm users (testkit once imported
  // @sremote/connector-newt without declaring it).
  await check("declared dependencies only (dist imports)", async () => {
    const problems = [];
    for (const t of tarballs) {
      const declared = new Set([
        t.name,
        ...Object.keys(t.manifest.dependencies ?? {}),
        ...Object.keys(t.manifest.peerDependencies ?? {}),
      ]);
      for (const f of t.files.filter((n) => n.startsWith("dist/") && /\.(js|d\.ts)$/.test(n))) {
        const code = readFileSync(join(t.root, f), "utf8");
        for (const m of code.matchAll(
          /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\(\s*|^import\s+)["']([^"'./][^"']*)["']/gm,
        )) {
          const spec = m[1];
          // Not a package name (prose in a comment, e.g. `from "not a key"`) or a builtin.
          if (!PACKAGE_SPEC.test(spec) || spec.startsWith("node:") || isBuiltin(spec)) continue;
          const name = spec
            .split("/")
            .slice(0, spec.startsWith("@") ? 2 : 1)
            .join("/");
          if (!declared.has(name)) problems.push(`${t.name}: ${f} imports ${name}`);
        }
      }
    }
    return { ok: problems.length === 0, detail: [...new Set(problems)].join("; ") };
  });

  // 2. In parallel: npm installs the tarballs into the app folder; publint + attw on each tarball.
  writeFileSync(
    join(app, "package.json"),
    `${JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2)}\n`,
  );
  const typesNode = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).devDependencies["@types/node"];
  // --omit=peer: npm still resolves every peer range (a conflict fails the install) but does not
  // put testkit's peer vitest (~45 packages, a test-time tool this app does not use) on disk.
  // @sremote/core stays: the app depends on it directly, as the connectors' READMEs say.
  const installApp = check("npm install the tarballs (outside the workspace)", async () => {
    const r = await run(
      "npm",
      [...npmInstall, "--omit=peer", ...tarballs.map((t) => t.file), `@types/node@${typesNode}`],
      {
        cwd: app,
        timeoutMs: 150_000,
      },
    );
    return { ok: r.code === 0, out: r.out };
  });
  const lint = (async () => {
    const ok = await toolsReady;
    const bin = (name) => join(tools, "node_modules", ".bin", name);
    const tasks = tarballs.flatMap((t) => [
      () =>
        check(`publint ${t.name}`, async () => {
          const r = await run(bin("publint"), ["run", t.file, "--strict"], { cwd: temp });
          return { ok: ok && r.code === 0, out: r.out };
        }),
      () =>
        check(`attw ${t.name}`, async () => {
          const r = await run(bin("attw"), [t.file, ...ATTW_FLAGS, "--format", "ascii"], { cwd: temp });
          return { ok: ok && r.code === 0, out: r.out };
        }),
    ]);
    await pool(tasks, 2);
  })();
  const installed = await installApp;

  // 3. The consumer's own code, run and type-checked against the installed packages.
  if (installed) {
    for (const f of readdirSync(fixtures)) copyFileSync(join(fixtures, f), join(app, f));
    /** A fresh HOME per run: the client uploads the installed agent package's files there. */
    const home = (name) => {
      const dir = join(temp, `home-${name}`);
      mkdirSync(dir);
      return { HOME: dir };
    };
    const sqrt2 = /^1\.414213562373095\d*$/m;
    await check("ESM: node app.mjs (import, math.sqrt via localConnector)", async () => {
      const r = await run("node", ["app.mjs"], { cwd: app, env: home("mjs"), timeoutMs: 60_000 });
      return { ok: r.code === 0 && /= 1\.414/.test(r.out), detail: r.out.trim().split("\n")[0], out: r.out };
    });
    await check("CommonJS: node app.cjs (require of the ESM packages)", async () => {
      const r = await run("node", ["app.cjs"], { cwd: app, env: home("cjs"), timeoutMs: 60_000 });
      return { ok: r.code === 0 && /= 1\.414/.test(r.out), detail: r.out.trim().split("\n")[0], out: r.out };
    });
    // skipLibCheck is off in these configs: a public .d.ts that imports types the consumer does
    // not get (say from an @types/* package that is only a devDependency) fails with TS7016.
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
    for (const [config, what] of [
      ["node16", "moduleResolution node16, ESM app.ts"],
      ["bundler", "moduleResolution bundler, app.ts"],
      ["nodenext-cjs", "module nodenext, CommonJS app.cts"],
    ]) {
      await check(`tsc --strict --noEmit (${what})`, async () => {
        const r = await run("node", [tsc, "-p", `tsconfig.${config}.json`], { cwd: app, timeoutMs: 90_000 });
        return { ok: r.code === 0, out: r.out };
      });
    }
    await check("CLI: npx sremote call local: math.sqrt 2", async () => {
      const r = await run("npx", ["--no", "sremote", "call", "local:", "math.sqrt", "2"], {
        cwd: app,
        env: home("cli"),
        timeoutMs: 60_000,
      });
      return { ok: r.code === 0 && sqrt2.test(r.out), detail: r.out.match(sqrt2)?.[0] ?? "", out: r.out };
    });
  } else {
    results.push({ name: "consumer scripts, tsc, CLI", ok: false, detail: "skipped: install failed", ms: 0 });
  }
  await lint;
  return summary();
}

function summary() {
  const failed = results.filter((r) => !r.ok);
  console.log(`\n── consumer test summary (${((Date.now() - started) / 1000).toFixed(0)} s) ──`);
  for (const r of results) console.log(`${r.ok ? "ok  " : "FAIL"} ${r.name}`);
  console.log(
    failed.length ? `${failed.length} of ${results.length} checks failed` : `all ${results.length} checks passed`,
  );
  return failed.length ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (error) {
  console.error(error);
} finally {
  cleanUp();
  if (keep && temp) console.log(`kept ${temp}`);
}
process.exit(code);

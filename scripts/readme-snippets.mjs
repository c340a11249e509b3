#!/usr/bin/env node
// Keeps the READMEs' code honest. Every ```ts/```typescript/```js/```mjs block of every
// README.md is a program: it is type-checked under `strict` against the workspace packages
// (resolved to their TypeScript sources through the `@sremote/source` condition), checked
// to parse on this Node as an ES module once its types are stripped (so `await using`,
// which Node 20 cannot parse, is caught), and — unless marked otherwise — run with tsx
// against the local machine, each with its own empty HOME and a timeout. ```sh blocks are
// checked for command lines a fresh clone cannot run (`pnpm …`, unknown npm scripts, missing
// files); an ```sh block marked `run` is executed line by line from the repository root
// (`--json` output must parse).
//
// A marker in an HTML comment on the line before a fence changes what happens:
//   <!-- snippet: typecheck-only (reason) -->   needs something remote (an SSH host, NERSC…)
//   <!-- snippet: skip (reason) -->             not a program (a type sketch, a config fragment)
//   <!-- snippet: continues -->                 checked as the end of the README's previous snippet
//   <!-- snippet: needs-python numpy -->        run only when python3 imports these modules
//   <!-- snippet: run -->                       (```sh only) run every command line
// A reason is required for typecheck-only and skip.
//
// Usage: node scripts/readme-snippets.mjs [--no-run] [--verbose] [README paths…]
// Exit status 1 when a snippet fails; each failure names the README and line.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "package.json"));
const ts = require("typescript");

const RUN_TIMEOUT_MS = 30_000;
const RUN_CONCURRENCY = 2;
const CODE_LANGS = new Map([
  ["ts", "ts"],
  ["typescript", "ts"],
  ["js", "js"],
  ["javascript", "js"],
  ["mjs", "js"],
]);
const SHELL_LANGS = new Set(["sh", "bash", "shell", "console"]);

const argv = process.argv.slice(2);
const noRun = argv.includes("--no-run");
const verbose = argv.includes("--verbose");
const only = argv.filter((a) => !a.startsWith("--")).map((a) => resolve(a));

const started = Date.now();
const failures = [];
const lines = [];
const fail = (where, message) => failures.push(`${where}: ${message}`);

// ---------------------------------------------------------------------------------------
// Finding the snippets

function findReadmes(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (["node_modules", ".git", "dist", ".tmp", ".turbo", "coverage"].includes(entry.name)) continue;
      out.push(...findReadmes(join(dir, entry.name)));
    } else if (entry.name === "README.md") {
      out.push(join(dir, entry.name));
    }
  }
  return out;
}

const MARKER = /^<!--\s*snippet:\s*(.*?)\s*-->$/;

/** Parses a marker's text into { mode, reason, modules }; throws on an unknown marker. */
function parseMarker(text) {
  const m = /^([a-z-]+)\s*(.*)$/.exec(text);
  const mode = m?.[1];
  const rest = m?.[2] ?? "";
  const reason = /^\((.+)\)$/.exec(rest)?.[1];
  switch (mode) {
    case "skip":
    case "typecheck-only":
      if (!reason) throw new Error(`"${mode}" needs a reason in parentheses`);
      return { mode, reason };
    case "continues":
    case "run":
      return { mode };
    case "needs-python": {
      const modules = rest.split(/[\s,]+/).filter(Boolean);
      if (modules.length === 0) throw new Error("needs-python names no module");
      return { mode, modules };
    }
    default:
      throw new Error(`unknown snippet marker ${JSON.stringify(text)}`);
  }
}

/** Every fenced block of a README: { lang, code, line (README line of the first code line), marker }. */
function blocksOf(path) {
  const text = readFileSync(path, "utf8").split("\n");
  const rel = relative(root, path);
  const blocks = [];
  for (let i = 0; i < text.length; i++) {
    const open = /^ {0,3}```([\w-]*)\s*$/.exec(text[i]);
    if (!open) continue;
    let end = i + 1;
    while (end < text.length && !/^ {0,3}```\s*$/.test(text[end])) end++;
    let prev = i - 1;
    while (prev >= 0 && text[prev].trim() === "") prev--;
    const markerText = prev >= 0 ? MARKER.exec(text[prev].trim())?.[1] : undefined;
    let marker = { mode: "default" };
    if (markerText !== undefined) {
      try {
        marker = parseMarker(markerText);
      } catch (e) {
        fail(`${rel}:${prev + 1}`, e.message);
      }
    }
    blocks.push({ readme: rel, lang: open[1].toLowerCase(), code: text.slice(i + 1, end), line: i + 2, marker });
    i = end;
  }
  return blocks;
}

// ---------------------------------------------------------------------------------------
// Command lines (```sh / ```console)

const rootScripts = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts ?? {};

/** The command lines of a shell block: continuation lines joined, prompts and comments dropped. */
function commandLines(block) {
  const out = [];
  let current;
  block.code.forEach((raw, k) => {
    let text = raw;
    if (current === undefined) {
      if (block.lang === "console") {
        if (!text.startsWith("$ ")) return; // program output
        text = text.slice(2);
      }
      if (/^\s*(#|$)/.test(text)) return;
      current = { text: "", line: block.line + k };
    }
    const continued = /\\\s*$/.test(text);
    current.text += `${text.replace(/\\\s*$/, "")} `;
    if (!continued) {
      out.push({ text: current.text.trim(), line: current.line });
      current = undefined;
    }
  });
  return out;
}

function lintCommand(where, command) {
  // Leading VAR=value assignments and a trailing comment are not the command.
  const words = command
    .replace(/\s+#.*$/, "")
    .split(/\s+/)
    .filter((_w, k, all) => !all.slice(0, k + 1).every((x) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(x)));
  const [cmd, ...args] = words;
  if (cmd === "cd") return;
  if (cmd === "pnpm") {
    fail(where, `\`${command}\`: a fresh machine has no pnpm (use \`node scripts/pnpm.mjs …\` or an npm script)`);
  } else if (cmd === "npm" && args[0] === "run") {
    const name = args.slice(1).find((a) => !a.startsWith("-"));
    if (name && !(name in rootScripts)) fail(where, `\`${command}\`: the root package.json has no script "${name}"`);
    if (name === "sremote" && !args.includes("-s") && !args.includes("--silent")) {
      fail(where, `\`${command}\`: use \`npm run -s sremote -- …\` (without -s npm prints its banner into the output)`);
    }
    if (args.length > 2 && !args.includes("--")) fail(where, `\`${command}\`: arguments for the script need \`--\``);
  } else if (cmd === "node" || cmd === "tsx" || (cmd === "npx" && args[0] === "tsx")) {
    const file = (cmd === "npx" ? args.slice(1) : args).find((a) => !a.startsWith("-"));
    if (file && /\.[cm]?[jt]s$/.test(file) && !existsSync(join(root, file))) {
      fail(where, `\`${command}\`: ${file} does not exist (commands run from the repository root)`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Programs

const readmes = (only.length > 0 ? only : findReadmes(root)).sort();
/** { id, kind: "ts"|"js", mode, reason?, modules?, segments: [{ readme, line, code }] } */
const programs = [];
const shellRuns = [];
let skipped = 0;
for (const readme of readmes) {
  let last;
  for (const block of blocksOf(readme)) {
    const where = `${block.readme}:${block.line - 1}`;
    if (SHELL_LANGS.has(block.lang)) {
      const commands = commandLines(block);
      for (const c of commands) lintCommand(`${block.readme}:${c.line}`, c.text);
      if (block.marker.mode === "run") shellRuns.push(...commands.map((c) => ({ ...c, readme: block.readme })));
      continue;
    }
    const kind = CODE_LANGS.get(block.lang);
    if (!kind) continue;
    const { mode } = block.marker;
    if (mode === "run") fail(where, "`run` is for ```sh blocks; code blocks run unless marked");
    if (mode === "skip") {
      skipped++;
      lines.push(`skip       ${where}  (${block.marker.reason})`);
      continue;
    }
    const segment = { readme: block.readme, line: block.line, code: block.code };
    if (mode === "continues") {
      if (!last) fail(where, "`continues` but no earlier snippet in this README");
      else last.segments.push(segment);
      continue;
    }
    last = { id: programs.length, kind, ...block.marker, segments: [segment] };
    programs.push(last);
  }
}

const nameOf = (p) => `${p.segments[0].readme}:${p.segments[0].line - 1}`;
const textOf = (p) => p.segments.map((s) => s.code.join("\n")).join("\n");

/** README position of a 0-based line of a program's text. */
function positionOf(p, line0) {
  let offset = line0;
  for (const s of p.segments) {
    if (offset < s.code.length) return `${s.readme}:${s.line + offset}`;
    offset -= s.code.length;
  }
  return nameOf(p);
}

// A folder inside the repository (so root node_modules — @types/node, vitest — are found)
// whose own node_modules/@sremote/* link to the workspace packages.
await mkdir(join(root, ".tmp"), { recursive: true });
const work = await mkdtemp(join(root, ".tmp", "readme-snippets-"));
try {
  await writeFile(join(work, "package.json"), '{ "type": "module", "private": true }\n');
  await mkdir(join(work, "node_modules", "@sremote"), { recursive: true });
  for (const dir of [
    ...readdirSync(join(root, "packages")).map((d) => join(root, "packages", d)),
    join(root, "remote"),
  ]) {
    const manifest = join(dir, "package.json");
    if (!existsSync(manifest)) continue;
    const { name } = JSON.parse(readFileSync(manifest, "utf8"));
    if (name?.startsWith("@sremote/")) await symlink(dir, join(work, "node_modules", name), "dir");
  }
  for (const p of programs) {
    p.file = join(work, `snippet-${p.id}.${p.kind === "ts" ? "mts" : "mjs"}`);
    await writeFile(p.file, `${textOf(p)}\n`);
  }

  // --- Node 20: the program, types stripped, must parse as an ES module; no `using`.
  const syntaxChecks = programs.map(async (p) => {
    const source = ts.createSourceFile(p.file, textOf(p), ts.ScriptTarget.ESNext, true);
    const visit = (node) => {
      if (ts.isVariableDeclarationList(node) && (node.flags & ts.NodeFlags.Using) !== 0) {
        const line = source.getLineAndCharacterOfPosition(node.getStart()).line;
        p.failed = true;
        fail(
          positionOf(p, line),
          "`using`/`await using` is a SyntaxError on Node 20 (no explicit resource management): use try/finally with close()",
        );
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
    const js = ts.transpileModule(textOf(p), {
      compilerOptions: { target: ts.ScriptTarget.ESNext, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: false },
    }).outputText;
    const jsFile = join(work, `syntax-${p.id}.mjs`);
    await writeFile(jsFile, js);
    const r = await runProcess(process.execPath, ["--check", jsFile], { cwd: work, timeoutMs: 20_000 });
    if (r.code !== 0 && !p.failed) {
      p.failed = true;
      fail(nameOf(p), `does not parse on Node ${process.versions.node} as an ES module:\n${indent(r.stderr)}`);
    }
  });

  // --- Runs, at most RUN_CONCURRENCY at a time. The command lines start now and run while
  // the type-check below keeps this thread busy; snippets are queued after it.
  const runs = [];
  let active = 0;
  const waiting = [];
  const queue = {
    push(job) {
      runs.push(
        (async () => {
          if (active < RUN_CONCURRENCY) active++;
          else await new Promise((wake) => waiting.push(wake)); // the slot is handed over
          try {
            await job();
          } finally {
            const next = waiting.shift();
            if (next) next();
            else active--;
          }
        })(),
      );
    },
  };
  for (const c of noRun ? [] : shellRuns) {
    queue.push(async () => {
      const where = `${c.readme}:${c.line}`;
      const t0 = Date.now();
      const r = await runProcess("sh", ["-c", c.text], { cwd: root, timeoutMs: RUN_TIMEOUT_MS });
      const seconds = ((Date.now() - t0) / 1000).toFixed(1);
      let problem = r.code === 0 ? undefined : r.timedOut ? "timed out" : `exited with ${r.code ?? r.signal}`;
      if (!problem && /\s--json(\s|$)/.test(c.text)) {
        try {
          JSON.parse(r.stdout);
        } catch {
          problem = "--json printed something that is not one JSON value";
        }
      }
      if (problem) {
        lines.push(`FAIL       ${where}  $ ${c.text}`);
        fail(where, `\`${c.text}\` ${problem}:\n${indent(tail(r.stdout + r.stderr))}`);
      } else {
        lines.push(`run        ${where}  $ ${c.text}  (${seconds} s)`);
      }
    });
  }
  const syntaxDone = Promise.all(syntaxChecks);

  // --- Types: one program for every snippet, strict, against the workspace sources.
  const tsStarted = Date.now();
  const options = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ["lib.es2023.d.ts", "lib.esnext.disposable.d.ts"],
    types: ["node"],
    customConditions: ["@sremote/source"],
    strict: true,
    allowJs: true,
    checkJs: true,
    skipLibCheck: true,
    noEmit: true,
  };
  const program = ts.createProgram(
    programs.map((p) => p.file),
    options,
  );
  for (const p of programs) {
    const sf = program.getSourceFile(p.file);
    const diagnostics = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
    for (const d of diagnostics) {
      const line = d.start === undefined ? 0 : sf.getLineAndCharacterOfPosition(d.start).line;
      p.failed = true;
      fail(positionOf(p, line), `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
    }
  }
  const tsSeconds = (Date.now() - tsStarted) / 1000;

  // Snippets that passed every check run.
  const missingPython = new Map();
  const pythonHas = async (module) => {
    if (!missingPython.has(module)) {
      const r = await runProcess("python3", ["-c", `import ${module}`], { cwd: work, timeoutMs: 20_000 });
      missingPython.set(module, r.code !== 0);
    }
    return !missingPython.get(module);
  };
  const tsx = join(root, "node_modules", ".bin", "tsx");
  for (const p of programs) {
    const name = nameOf(p);
    queue.push(async () => {
      await syntaxDone;
      if (p.failed) {
        lines.push(`FAIL       ${name}`);
        return;
      }
      if (p.mode === "typecheck-only" || noRun) {
        lines.push(`typecheck  ${name}  (not run: ${noRun ? "--no-run" : p.reason})`);
        return;
      }
      for (const m of p.modules ?? []) {
        if (!(await pythonHas(m))) {
          lines.push(`typecheck  ${name}  (not run: python3 cannot import ${m})`);
          return;
        }
      }
      // Its own HOME (the client and syncAgent write ~/.sremote) and TMPDIR, removed afterwards.
      const home = join(work, `home-${p.id}`);
      const tmp = join(work, `tmp-${p.id}`);
      await mkdir(home);
      await mkdir(tmp);
      const t0 = Date.now();
      const r = await runProcess(tsx, ["--conditions=@sremote/source", p.file], {
        cwd: work,
        env: { ...process.env, HOME: home, TMPDIR: tmp },
        timeoutMs: RUN_TIMEOUT_MS,
      });
      const seconds = ((Date.now() - t0) / 1000).toFixed(1);
      if (r.code === 0) {
        lines.push(`run        ${name}  (${seconds} s)`);
        if (verbose) lines.push(indent(r.stdout + r.stderr));
      } else {
        lines.push(`FAIL       ${name}`);
        const why = r.timedOut ? `timed out after ${RUN_TIMEOUT_MS / 1000} s` : `exited with ${r.code ?? r.signal}`;
        // Stack frames name the temp file: point them at the README instead.
        const output = (r.stdout + r.stderr).replace(
          new RegExp(`(?:file://)?${p.file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:(\\d+)(?::\\d+)?`, "g"),
          (_m, line) => positionOf(p, Number(line) - 1),
        );
        fail(name, `running it ${why}:\n${indent(tail(output))}`);
      }
    });
  }
  await Promise.all(runs);

  const byPlace = (line) => line.slice(11);
  lines.sort((x, y) => byPlace(x).localeCompare(byPlace(y), "en", { numeric: true }));
  console.log(lines.join("\n"));
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `\n${programs.length} snippet(s) from ${readmes.length} README(s), ${skipped} skipped by marker, ` +
      `${noRun ? 0 : shellRuns.length} command line(s) run; type-check ${tsSeconds.toFixed(1)} s, total ${seconds} s`,
  );
} finally {
  await rm(work, { recursive: true, force: true });
}

if (failures.length > 0) {
  console.error(`\n${failures.length} README snippet problem(s):\n\n${failures.join("\n\n")}`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------

function indent(text) {
  return text
    .trimEnd()
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
}

function tail(text, n = 30) {
  return text.trimEnd().split("\n").slice(-n).join("\n");
}

/** Runs a program in its own process group; on timeout the whole group is killed. */
function runProcess(cmd, args, { cwd, env = process.env, timeoutMs }) {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.on("data", (c) => {
      stdout += c;
    });
    child.stderr.on("data", (c) => {
      stderr += c;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      done({ code: 127, signal: null, stdout, stderr: `${stderr}${e.message}\n`, timedOut });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      // Whatever the snippet left running in its group (an agent, a server) ends with it.
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
      done({ code, signal, stdout, stderr, timedOut });
    });
  });
}

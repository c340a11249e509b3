#!/usr/bin/env node
// Rewrites dist/bin.js (tsc's output) as one bundle with the CLI's own code and its
// workspace packages, the connectors and the installer split into chunks that load only
// for the targets and commands that need them (dist/bin-chunks/). Node's ESM loader costs
// ~1 ms per file: `sremote call local:` loaded ~80 files, ~50 ms of its start-up on the
// 2-vCPU VM (docs/performance.md, "CLI start-up"). dist/index.js, the library API, stays
// tsc's output.
//
// Left outside: packages that find files next to themselves or load native and wasm
// parts (@sremote/agent's remote/ folder, ssh2, undici, msgpackr and its optional
// extension). Everything sharing @sremote/core is bundled together, so that `instanceof`
// sees one copy of each error class. Source maps point back to each package's src/.
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { build } from "esbuild";

const root = new URL("..", import.meta.url);
const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));

rmSync(new URL("dist/bin-chunks", root), { recursive: true, force: true });
// The installer's chunk reads its remote scripts from ../scripts/ (dist/scripts/ here).
const installer = dirname(createRequire(import.meta.url).resolve("@sremote/installer/package.json"));
rmSync(new URL("dist/scripts", root), { recursive: true, force: true });
cpSync(join(installer, "scripts"), new URL("dist/scripts", root).pathname, { recursive: true });
await build({
  absWorkingDir: root.pathname,
  entryPoints: { bin: "dist/bin.js" },
  outdir: "dist",
  entryNames: "[name]",
  chunkNames: "bin-chunks/[name]-[hash]",
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: ["@sremote/agent", "ssh2", "cpu-features", "undici", "msgpackr", "msgpackr-extract"],
  // main.ts reads ../package.json unbundled; bundled, the version is built in.
  define: { SREMOTE_CLI_VERSION: JSON.stringify(pkg.version) },
  // CommonJS dependencies (commander) call require() for Node's own modules.
  banner: {
    js: 'import { createRequire as __sremoteCreateRequire } from "node:module"; const require = __sremoteCreateRequire(import.meta.url);',
  },
  // Linked maps, chained through tsc's (esbuild reads their sourceMappingURL comments): a
  // crash run with NODE_OPTIONS=--enable-source-maps names src/*.ts lines, not the bundle's.
  // Node reads them only when asked, so start-up pays nothing.
  sourcemap: "linked",
  sourcesContent: false,
  legalComments: "none",
  logLevel: "warning",
});

// Sources of bundled third-party code (commander) point into this repository's
// node_modules/.pnpm, which no installation has: name them `bundled:<package>@<version>/<file>`
// instead. Workspace sources (`../../protocol/src/…`) already resolve in an installation, where
// the packages sit side by side in node_modules/@sremote/ and ship their src/.
for (const map of [
  "dist/bin.js.map",
  ...readdirSync(new URL("dist/bin-chunks", root)).map((f) => `dist/bin-chunks/${f}`),
]) {
  if (!map.endsWith(".map")) continue;
  const file = new URL(map, root);
  const json = JSON.parse(readFileSync(file, "utf8"));
  json.sources = json.sources.map((src) => {
    const m = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(src);
    if (!m) return src;
    const version = /@(\d[^/_]*)/.exec(src.slice(src.indexOf(".pnpm/") + 6 + (m[1].startsWith("@") ? 1 : 0)))?.[1];
    return `bundled:${m[1]}${version ? `@${version}` : ""}/${m[2]}`;
  });
  writeFileSync(file, JSON.stringify(json));
}

#!/usr/bin/env node
// Runs the workspace's turbo (`npm run build|typecheck|lint` go through here) on a machine
// with only Node 20: turbo runs every package task as `pnpm run <task>` in that package's
// folder, so it needs a `pnpm` on PATH that keeps the working folder. scripts/pnpm.mjs
// cannot be that binary: it always runs in the root, where `pnpm run build` is `turbo run
// build` again — a fork storm (notes in docs/decisions.md, "turbo and pnpm").
//
// 1. A `pnpm` already on PATH at the pinned version is used as it is.
// 2. Otherwise corepack's own shims are put in node_modules/.sremote-bin (`corepack enable
//    --install-directory`); they resolve the pinned pnpm from package.json and keep the cwd.
// 3. Dependencies are installed first when turbo is not there yet (a fresh clone).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const version = String(pkg.packageManager).replace(/^pnpm@/, "");

const env = {
  ...process.env,
  COREPACK_ENABLE_DOWNLOAD_PROMPT: "0",
  COREPACK_INTEGRITY_KEYS: "0",
  npm_config_nodedir: process.env.npm_config_nodedir ?? "/usr",
  TURBO_TELEMETRY_DISABLED: "1",
  DO_NOT_TRACK: "1",
};

function pnpmVersionOnPath(path) {
  const r = spawnSync("pnpm", ["--version"], { env: { ...env, PATH: path }, encoding: "utf8", cwd: root });
  return r.status === 0 ? r.stdout.trim() : null;
}

function ensurePnpmOnPath() {
  if (pnpmVersionOnPath(env.PATH ?? "") === version) return;
  const bin = join(root, "node_modules", ".sremote-bin");
  const withBin = `${bin}${delimiter}${env.PATH ?? ""}`;
  if (!existsSync(join(bin, "pnpm"))) {
    mkdirSync(bin, { recursive: true });
    const r = spawnSync("corepack", ["enable", "--install-directory", bin, "pnpm"], { env, stdio: "inherit" });
    if (r.status !== 0) {
      console.error("turbo: `corepack enable` failed; install pnpm " + version + " (npm i -g pnpm@" + version + ")");
      process.exit(1);
    }
  }
  const found = pnpmVersionOnPath(withBin);
  if (found !== version) {
    console.error(`turbo: the pnpm in ${bin} reports ${found ?? "nothing"}, not ${version}`);
    process.exit(1);
  }
  env.PATH = withBin;
}

ensurePnpmOnPath();
const turbo = join(root, "node_modules", ".bin", "turbo");
if (!existsSync(turbo)) {
  console.error("turbo: installing dependencies first (pnpm install --frozen-lockfile)");
  const r = spawnSync("pnpm", ["install", "--frozen-lockfile"], { env, stdio: "inherit", cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const r = spawnSync(turbo, process.argv.slice(2), { env, stdio: "inherit", cwd: root });
if (r.error) console.error(`turbo: ${r.error.message}`);
process.exit(r.status ?? 1);

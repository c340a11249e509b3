#!/usr/bin/env node
// Runs the pinned pnpm (package.json "packageManager") through corepack, with the settings
// these machines need (notes/toolchain-facts.md): corepack 0.34 rejects the registry's
// signatures unless COREPACK_INTEGRITY_KEYS=0. Falls back to `npx pnpm@<version>`.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

const root = new URL("..", import.meta.url);
const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));
const version = String(pkg.packageManager).replace(/^pnpm@/, "");
const env = {
  ...process.env,
  COREPACK_ENABLE_DOWNLOAD_PROMPT: "0",
  COREPACK_INTEGRITY_KEYS: "0",
  npm_config_nodedir: process.env.npm_config_nodedir ?? "/usr",
};
const args = process.argv.slice(2);
let r = spawnSync("corepack", [`pnpm@${version}`, ...args], { stdio: "inherit", env, cwd: root });
if (r.error) {
  r = spawnSync("npx", ["-y", `pnpm@${version}`, ...args], { stdio: "inherit", env, cwd: root });
}
process.exit(r.status ?? 1);

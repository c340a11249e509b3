#!/usr/bin/env node
// Writes remote/package.json's version into the places that repeat it: the Python agent's
// __version__ (remote/sremote_agent/__init__.py) and the TypeScript constant behind
// AGENT_VERSION (remote/src/version.ts, a constant so that bundled apps need no
// package.json), so that `hello.agent.version` and AGENT_VERSION agree.
// Run by the root `version-packages` script after `changeset version`.
// `--check`: change nothing, exit 1 when they differ.
import { readFileSync, writeFileSync } from "node:fs";

const pkgUrl = new URL("../remote/package.json", import.meta.url);
const check = process.argv.includes("--check");
const targets = [
  { url: new URL("../remote/sremote_agent/__init__.py", import.meta.url), line: /^__version__ = "([^"]*)"$/m },
  {
    url: new URL("../remote/src/version.ts", import.meta.url),
    line: /^export const AGENT_PACKAGE_VERSION = "([^"]*)";$/m,
  },
];

const { version } = JSON.parse(readFileSync(pkgUrl, "utf8"));
if (typeof version !== "string" || !/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/.test(version)) {
  console.error(`sync-agent-version: remote/package.json has no usable version (${JSON.stringify(version)})`);
  process.exit(1);
}
let differ = false;
for (const { url, line } of targets) {
  const source = readFileSync(url, "utf8");
  const match = source.match(line);
  const name = url.pathname.replace(/^.*\/remote\//, "remote/");
  if (!match) {
    console.error(`sync-agent-version: no version line (${line}) in ${name}`);
    process.exit(1);
  }
  if (match[1] === version) {
    console.log(`sync-agent-version: ${name} is already at ${version}`);
    continue;
  }
  differ = true;
  if (check) {
    console.error(`sync-agent-version: ${name} says ${match[1]}, remote/package.json says ${version}`);
    continue;
  }
  writeFileSync(url, source.replace(line, match[0].replace(match[1], version)));
  console.log(`sync-agent-version: ${name} ${match[1]} -> ${version}`);
}
process.exit(check && differ ? 1 : 0);

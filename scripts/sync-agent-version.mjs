#!/usr/bin/env node
// Writes remote/package.json's version into the Python agent's __version__
// (remote/sremote_agent/__init__.py), so that `hello.agent.version` and AGENT_VERSION agree.
// Run by the root `version-packages` script after `changeset version`.
// `--check`: change nothing, exit 1 when they differ.
import { readFileSync, writeFileSync } from "node:fs";

const pkgUrl = new URL("../remote/package.json", import.meta.url);
const initUrl = new URL("../remote/sremote_agent/__init__.py", import.meta.url);
const check = process.argv.includes("--check");

const { version } = JSON.parse(readFileSync(pkgUrl, "utf8"));
if (typeof version !== "string" || !/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/.test(version)) {
  console.error(`sync-agent-version: remote/package.json has no usable version (${JSON.stringify(version)})`);
  process.exit(1);
}
const source = readFileSync(initUrl, "utf8");
const line = /^__version__ = "([^"]*)"$/m;
const match = source.match(line);
if (!match) {
  console.error('sync-agent-version: no `__version__ = "..."` line in remote/sremote_agent/__init__.py');
  process.exit(1);
}
if (match[1] === version) {
  console.log(`sync-agent-version: the agent is already at ${version}`);
  process.exit(0);
}
if (check) {
  console.error(`sync-agent-version: the agent says ${match[1]}, remote/package.json says ${version}`);
  process.exit(1);
}
writeFileSync(initUrl, source.replace(line, `__version__ = "${version}"`));
console.log(`sync-agent-version: agent ${match[1]} -> ${version}`);

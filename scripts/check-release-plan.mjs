#!/usr/bin/env node
// The release the pending changesets would make, checked: no package bumped to major while
// on 0.x (changesets bumps peer dependents to major unless their range stays satisfied, see
// docs/decisions.md "Publishing"), every public package in the one fixed group at the same
// new version, and no private package (bench, examples) versioned.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "sremote-release-plan-"));
const problems = [];
try {
  const out = join(dir, "status.json");
  const r = spawnSync("node", ["scripts/pnpm.mjs", "exec", "changeset", "status", "--output", out], {
    cwd: root,
    encoding: "utf8",
  });
  if (r.status !== 0) {
    console.error(r.stdout + r.stderr);
    problems.push("changeset status failed");
  } else {
    const { releases } = JSON.parse(readFileSync(out, "utf8"));
    const privateNames = new Set();
    const publicNames = new Set();
    for (const group of ["packages", "examples", "bench", "remote"]) {
      const dirs =
        group === "bench" || group === "remote"
          ? [join(root, group)]
          : readdirSync(join(root, group)).map((d) => join(root, group, d));
      for (const d of dirs) {
        let pkg;
        try {
          pkg = JSON.parse(readFileSync(join(d, "package.json"), "utf8"));
        } catch {
          continue;
        }
        (pkg.private ? privateNames : publicNames).add(pkg.name);
      }
    }
    const versions = new Set();
    for (const rel of releases) {
      if (rel.type === "major")
        problems.push(`${rel.name} would be bumped to major (${rel.oldVersion} → ${rel.newVersion})`);
      if (privateNames.has(rel.name) && rel.type !== "none")
        problems.push(`private package ${rel.name} would be versioned`);
      if (publicNames.has(rel.name) && rel.type !== "none") versions.add(rel.newVersion);
    }
    if (versions.size > 1) problems.push(`public packages would get different versions: ${[...versions].join(", ")}`);
    const plan = releases
      .filter((r) => r.type !== "none")
      .map((r) => `${r.name} ${r.oldVersion} → ${r.newVersion} (${r.type})`);
    console.error(`release plan:\n  ${plan.join("\n  ") || "(nothing to release)"}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (problems.length > 0) {
  console.error(`check-release-plan: FAIL\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.error("check-release-plan: ok (no major bump, one version for the fixed group, private packages untouched)");

#!/usr/bin/env node
// Makes sure what the test suite needs beyond Node and python3 is on this machine:
// OpenSSH's sshd (the SSH connector's integration tests run a private one on loopback) and
// Debian's python3-msgpack / python3-numpy (the agent's tests run twice: pure codec and C codec),
// Slurm and munge (a real cluster on loopback for the Slurm launcher), execnet and mitogen (peers
// in the benchmark).
// As root on Debian it installs them with apt; otherwise it says what is missing. With
// SREMOTE_TEST_STRICT=1 (CI) anything missing is an error instead of a skipped test group.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const strict = process.env.SREMOTE_TEST_STRICT === "1";
const isRoot = process.getuid?.() === 0;
const haveApt = existsSync("/usr/bin/apt-get");

function missing() {
  const out = [];
  if (!existsSync("/usr/sbin/sshd")) out.push("openssh-server");
  if (!existsSync("/usr/bin/ssh") || !existsSync("/usr/bin/scp")) out.push("openssh-client");
  const py = "/usr/bin/python3";
  if (!existsSync(py)) out.push("python3");
  else {
    if (spawnSync(py, ["-c", "import msgpack"]).status !== 0) out.push("python3-msgpack");
    if (spawnSync(py, ["-c", "import numpy"]).status !== 0) out.push("python3-numpy");
    if (spawnSync(py, ["-c", "import ensurepip, venv"]).status !== 0) out.push("python3-venv");
    // The installer's tests build wheels offline with Debian's pip, setuptools and wheel.
    if (spawnSync(py, ["-c", "import setuptools, wheel, pip"]).status !== 0) out.push("python3-pip", "python3-wheel");
  }
  if (!existsSync("/usr/bin/git")) out.push("git");
  if (!existsSync("/usr/bin/shellcheck")) out.push("shellcheck");
  if (!existsSync("/usr/bin/pyflakes3")) out.push("pyflakes3");
  // A real Slurm cluster on 127.0.0.1 for the Slurm launcher's tests (scripts/slurm-cluster.mjs).
  if (!existsSync("/usr/sbin/slurmctld") || !existsSync("/usr/sbin/slurmd")) out.push("slurm-wlm");
  if (!existsSync("/usr/bin/srun")) out.push("slurm-client");
  if (!existsSync("/usr/sbin/munged")) out.push("munge");
  // The peers `pnpm bench --peers` compares against (Debian's packages, never PyPI).
  if (existsSync(py)) {
    if (spawnSync(py, ["-c", "import execnet"]).status !== 0) out.push("python3-execnet");
    if (spawnSync(py, ["-c", "import mitogen"]).status !== 0) out.push("python3-mitogen");
  }
  return out;
}

function apt(args) {
  // Wait for a dpkg lock another process holds (unattended upgrades) instead of giving up.
  return spawnSync("apt-get", ["-o", "DPkg::Lock::Timeout=300", ...args], {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  }).status;
}

let need = missing();
if (need.length > 0 && isRoot && haveApt) {
  console.error(`test prerequisites: installing ${need.join(" ")} with apt-get`);
  const args = ["install", "-y", "--no-install-recommends", ...need];
  if (apt(args) !== 0) {
    apt(["update"]);
    apt(args);
  }
  need = missing();
}
if (need.length > 0) {
  const msg = `test prerequisites missing: ${need.join(" ")} (Debian: apt-get install -y ${need.join(" ")})`;
  if (strict) {
    console.error(`error: ${msg}`);
    process.exit(1);
  }
  console.error(`warning: ${msg}; the tests that need them will be skipped`);
}

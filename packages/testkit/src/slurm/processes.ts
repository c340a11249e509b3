import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { isAlive, signalAll, waitGone } from "../sshd/processes.js";

/**
 * Starts a daemon in its own session (`setsid`, like `setsid … </dev/null >log 2>&1 &`), so no
 * pipe of ours is held and it outlives a `down` script; returns its PID.
 */
export function startDaemon(program: string, args: readonly string[], logPath: string, env: NodeJS.ProcessEnv): number {
  const fd = openSync(logPath, "a");
  try {
    const child = spawn(program, args, { detached: true, stdio: ["ignore", fd, fd], env });
    child.on("error", () => {});
    child.unref();
    if (child.pid === undefined) throw new Error(`slurm cluster: could not start ${program}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** PIDs whose environment holds `SLURM_CONF=<slurmConf>`: job steps and what they run. */
export async function processesUsing(slurmConf: string): Promise<number[]> {
  const needle = Buffer.from(`\0SLURM_CONF=${slurmConf}\0`);
  const names = await readdir("/proc");
  const found: number[] = [];
  await Promise.all(
    names.map(async (name) => {
      if (!/^\d+$/.test(name)) return;
      const pid = Number(name);
      if (pid === process.pid) return;
      try {
        const environ = Buffer.concat([Buffer.from([0]), await readFile(`/proc/${name}/environ`), Buffer.from([0])]);
        if (environ.includes(needle)) found.push(pid);
      } catch {
        // Gone, or not readable.
      }
    }),
  );
  return found;
}

/** True when `pid` is alive and its command line mentions `marker` (guards against PID reuse). */
export async function isOurs(pid: number, marker: string): Promise<boolean> {
  if (!(pid > 0) || !(await isAlive(pid))) return false;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  return cmdline.includes(marker);
}

/**
 * Ends a cluster's processes at once: its daemons (only when their command line still names
 * the cluster's folder) and every process started with its `SLURM_CONF` (step daemons, jobs).
 * SIGKILL: the cluster's state is thrown away anyway, and the daemons need ~2 s each for
 * SIGTERM. Waits until they are gone (bounded).
 */
export async function killCluster(daemonPids: readonly number[], dir: string, slurmConf: string): Promise<void> {
  const ours = (await Promise.all(daemonPids.map(async (pid) => ((await isOurs(pid, dir)) ? pid : 0)))).filter(
    (pid) => pid > 0,
  );
  const users = await processesUsing(slurmConf);
  const all = [...new Set([...ours, ...users])];
  signalAll(all, "SIGKILL");
  await waitGone(all, 10_000);
  // A step daemon may have started a process between the two looks: one more sweep.
  const late = await processesUsing(slurmConf);
  signalAll(late, "SIGKILL");
  await waitGone(late, 10_000);
}

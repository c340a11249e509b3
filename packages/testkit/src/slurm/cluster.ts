import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { isAlive } from "../sshd/processes.js";
import { freePort } from "../sshd/server.js";
import { clusterPaths, nodeNames, SLURM_PACKAGE, SLURM_PROGRAMS, slurmConf } from "./config.js";
import { killCluster, startDaemon } from "./processes.js";

const run = promisify(execFile);

/** Where clusters keep their folders (root-owned, 0755: every account reads slurm.conf). */
export const SLURM_STATE_DIR = "/run/sremote-slurm";

/** Options of {@link startSlurmCluster}. */
export interface StartSlurmClusterOptions {
  /** Number of compute nodes, `c1` … `cN` (default 3). */
  nodes?: number;
  /** CPUs each node advertises (default 4; more than the machine has is fine). */
  cpusPerNode?: number;
  /** The one (default) partition's name (default `"debug"`). */
  partition?: string;
  /** The partition's `MaxTime` in minutes (default 60). */
  maxTimeMinutes?: number;
  /** How long to wait for every node to be idle (default 30 s). */
  startTimeoutMs?: number;
  /**
   * Leave the cluster running when this process exits (the command-line `up`); otherwise the
   * next fixture that starts after this process died stops it and removes its folder.
   */
  keep?: boolean;
}

/** The facts of a running cluster. */
export interface SlurmClusterFacts {
  /** The cluster's slurm.conf (world-readable). Every Slurm command needs it as `SLURM_CONF`. */
  slurmConf: string;
  /** Node names, `c1` … `cN`; inside a job `$SLURMD_NODENAME` is one of them. */
  nodes: string[];
  /** The partition's name. */
  partition: string;
  /** `{ SLURM_CONF }`: the environment Slurm commands need, for any account on this host. */
  env: Record<string, string>;
  /** The cluster's folder (config, state, logs). */
  dir: string;
  /** PIDs of munged, slurmctld and the slurmd of each node. */
  pids: number[];
}

/** A running cluster; {@link SlurmCluster.stop} ends it. */
export interface SlurmCluster extends SlurmClusterFacts {
  /** Runs a Slurm client command (`squeue`, `scancel`…) as root with the cluster's env. */
  command(program: keyof typeof SLURM_PROGRAMS, args: readonly string[]): Promise<{ stdout: string; stderr: string }>;
  /** Job ids (`squeue`) of every job in the queue, any user, any state. */
  jobs(): Promise<Array<{ id: string; name: string; state: string; user: string }>>;
  /** Tail of the daemons' logs, for failure messages. */
  logs(): Promise<string>;
  /** Kills its daemons, their job steps and jobs (in parallel), removes the folder. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Why {@link startSlurmCluster} cannot run here — not root, or Slurm/munge programs missing —
 * or `null` when it can. For `describeUnless(slurmMissing())`.
 */
export function slurmMissing(): string | null {
  if (process.getuid?.() !== 0) return "a Slurm cluster needs root (slurmd runs jobs as their users)";
  const need = (Object.keys(SLURM_PROGRAMS) as Array<keyof typeof SLURM_PROGRAMS>).filter(
    (k) => !existsSync(SLURM_PROGRAMS[k]),
  );
  if (need.length === 0) return null;
  const packages = [...new Set(need.map((k) => SLURM_PACKAGE[k]))].join(" ");
  return `${need.map((k) => SLURM_PROGRAMS[k]).join(", ")} not found (Debian: apt-get install -y ${packages})`;
}

interface SavedCluster {
  owner: number | "keep";
  pids: number[];
  slurmConf: string;
}

async function readSaved(dir: string): Promise<SavedCluster | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, "cluster.json"), "utf8")) as SavedCluster;
  } catch {
    return undefined;
  }
}

/** Stops the cluster whose folder is `dir` (from any process) and removes the folder. */
export async function stopSlurmClusterAt(dir: string): Promise<void> {
  const saved = await readSaved(dir);
  if (saved) await killCluster(saved.pids, dir, saved.slurmConf);
  await rm(dir, { recursive: true, force: true });
}

/** Stops clusters whose owning process died (a test run that was killed). */
async function sweepStale(): Promise<void> {
  for (const name of await readdir(SLURM_STATE_DIR).catch(() => [] as string[])) {
    if (!name.startsWith("cluster-")) continue;
    const dir = join(SLURM_STATE_DIR, name);
    const saved = await readSaved(dir);
    if (saved?.owner === "keep") continue;
    if (saved && (await isAlive(saved.owner))) continue;
    if (!saved) {
      // Being created right now by someone else, or a start that failed half-way long ago.
      const age = Date.now() - (await stat(dir).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age < 60_000) continue;
    }
    await stopSlurmClusterAt(dir);
  }
}

async function tail(path: string, lines = 15): Promise<string> {
  const text = await readFile(path, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * Brings up a real Slurm cluster on 127.0.0.1 in a fresh folder under `/run/sremote-slurm`:
 * a private munged (key in a 0700 folder, socket in a 0755 one), slurmctld and one
 * `slurmd -N cN` per node, on free loopback ports; resolves once every node is idle (about
 * 0.3 s). Needs root and Debian's `slurm-wlm`, `slurm-client` and `munge` (see
 * {@link slurmMissing}). Any account on the host can then run `srun`/`salloc` with
 * {@link SlurmClusterFacts.env}. Several clusters may run at once.
 */
export async function startSlurmCluster(options: StartSlurmClusterOptions = {}): Promise<SlurmCluster> {
  try {
    return await startOnce(options);
  } catch (err) {
    // Free ports are picked before the daemons bind them: one more try with fresh ones.
    if (!/daemon\(s\) .* exited/.test(err instanceof Error ? err.message : "")) throw err;
    return await startOnce(options);
  }
}

async function startOnce(options: StartSlurmClusterOptions): Promise<SlurmCluster> {
  const missing = slurmMissing();
  if (missing) throw new Error(`slurm cluster: ${missing}`);
  const nodeCount = options.nodes ?? 3;
  if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > 16) throw new Error("nodes must be 1 … 16");
  const partition = options.partition ?? "debug";
  if (!/^[A-Za-z0-9_-]+$/.test(partition)) throw new Error(`bad partition name ${JSON.stringify(partition)}`);
  await mkdir(SLURM_STATE_DIR, { recursive: true, mode: 0o755 });
  await chmod(SLURM_STATE_DIR, 0o755);
  await sweepStale();
  const dir = await mkdtemp(join(SLURM_STATE_DIR, "cluster-"));
  await chmod(dir, 0o755);
  const paths = clusterPaths(dir);
  const pids: number[] = [];
  const env = { SLURM_CONF: paths.slurmConf };
  const daemonEnv = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...env };
  const owner: number | "keep" = options.keep ? "keep" : process.pid;
  const save = () =>
    writeFile(
      join(dir, "cluster.json"),
      JSON.stringify({ owner, pids, slurmConf: paths.slurmConf } satisfies SavedCluster),
    );
  const logs = async () =>
    [
      `--- munged\n${await tail(paths.mungeLog)}`,
      `--- slurmctld\n${await tail(paths.ctldLog)}`,
      ...(await Promise.all(
        nodeNames(nodeCount).map(async (n) => `--- slurmd ${n}\n${await tail(paths.slurmdLog.replace("%n", n))}`),
      )),
    ].join("\n");
  const command = async (program: keyof typeof SLURM_PROGRAMS, args: readonly string[]) => {
    const r = await run(SLURM_PROGRAMS[program], [...args], { env: { ...process.env, ...env }, timeout: 30_000 });
    return { stdout: r.stdout, stderr: r.stderr };
  };
  try {
    await save();
    // munge: key (0400) in a root-only folder; socket in a world-readable one.
    await mkdir(paths.mungeKeyDir, { mode: 0o700 });
    await mkdir(paths.mungeSocketDir, { mode: 0o755 });
    await chmod(paths.mungeSocketDir, 0o755);
    await writeFile(paths.mungeKey, randomBytes(1024), { mode: 0o400 });
    pids.push(
      startDaemon(
        SLURM_PROGRAMS.munged,
        [
          "-F",
          `--socket=${paths.mungeSocket}`,
          `--key-file=${paths.mungeKey}`,
          `--pid-file=${paths.mungePid}`,
          `--log-file=${paths.mungeLog}`,
          `--seed-file=${paths.mungeSeed}`,
        ],
        join(paths.mungeKeyDir, "munged.out"),
        daemonEnv,
      ),
    );
    await save();
    await mkdir(paths.state, { mode: 0o700 });
    await mkdir(paths.spool, { mode: 0o755 });
    const ports = await distinctFreePorts(nodeCount + 1);
    await writeFile(
      paths.slurmConf,
      slurmConf({
        paths,
        clusterName: `sremote${randomBytes(3).toString("hex")}`,
        controlHost: hostname().split(".")[0] ?? "localhost",
        ctldPort: ports[0] as number,
        nodePorts: ports.slice(1),
        cpusPerNode: options.cpusPerNode ?? 4,
        partition,
        maxTimeMinutes: options.maxTimeMinutes ?? 60,
      }),
      { mode: 0o644 },
    );
    const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
    await waitFor(() => existsSync(paths.mungeSocket), deadline, "munged's socket");
    pids.push(
      startDaemon(SLURM_PROGRAMS.slurmctld, ["-D", "-f", paths.slurmConf], join(dir, "slurmctld.out"), daemonEnv),
    );
    for (const node of nodeNames(nodeCount)) {
      pids.push(
        startDaemon(
          SLURM_PROGRAMS.slurmd,
          ["-D", "-N", node, "-f", paths.slurmConf],
          join(dir, `slurmd-${node}.out`),
          daemonEnv,
        ),
      );
    }
    await save();
    await waitFor(
      async () => {
        // A daemon that exited (a port taken since it was picked…) fails the start at once.
        const dead = (await Promise.all(pids.map(async (pid) => ((await isAlive(pid)) ? 0 : pid)))).filter((p) => p);
        if (dead.length > 0) throw new Error(`daemon(s) ${dead.join(", ")} exited`);
        const r = await command("sinfo", ["-h", "-N", "-o", "%N %T"]).catch(() => ({ stdout: "" }));
        const idle = r.stdout.split("\n").filter((l) => /^\S+ idle$/.test(l.trim()));
        return idle.length === nodeCount;
      },
      deadline,
      `${nodeCount} idle nodes`,
    );
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const text = await logs();
    await stopSlurmClusterAt(dir);
    throw new Error(`slurm cluster: did not start: ${why}\n${text}`, { cause: err });
  }
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= stopSlurmClusterAt(dir);
    return stopping;
  };
  return {
    slurmConf: paths.slurmConf,
    nodes: nodeNames(nodeCount),
    partition,
    env,
    dir,
    pids: [...pids],
    command,
    async jobs() {
      const r = await command("squeue", ["-h", "-a", "-t", "all", "-o", "%i|%j|%T|%u"]);
      return r.stdout
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => {
          const [id = "", name = "", state = "", user = ""] = l.trim().split("|");
          return { id, name, state, user };
        });
    },
    logs,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let i = 0; ports.size < count && i < count * 10; i++) ports.add(await freePort());
  if (ports.size < count) throw new Error("no free ports");
  return [...ports];
}

/** Polls `check` every 25 ms until it holds; throws once `deadline` (epoch ms) passed. */
async function waitFor(check: () => boolean | Promise<boolean>, deadline: number, what: string): Promise<void> {
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

import { join } from "node:path";

/** Where Debian's `slurm-wlm`, `slurm-client` and `munge` install what the fixture runs. */
export const SLURM_PROGRAMS = {
  slurmctld: "/usr/sbin/slurmctld",
  slurmd: "/usr/sbin/slurmd",
  munged: "/usr/sbin/munged",
  mungekey: "/usr/sbin/mungekey",
  srun: "/usr/bin/srun",
  salloc: "/usr/bin/salloc",
  squeue: "/usr/bin/squeue",
  scancel: "/usr/bin/scancel",
  scontrol: "/usr/bin/scontrol",
  sinfo: "/usr/bin/sinfo",
} as const;

/** Which Debian package provides each program (for skip reasons). */
export const SLURM_PACKAGE: Record<keyof typeof SLURM_PROGRAMS, string> = {
  slurmctld: "slurm-wlm",
  slurmd: "slurm-wlm",
  munged: "munge",
  mungekey: "munge",
  srun: "slurm-client",
  salloc: "slurm-client",
  squeue: "slurm-client",
  scancel: "slurm-client",
  scontrol: "slurm-client",
  sinfo: "slurm-client",
};

/** Paths inside one cluster's folder. */
export interface ClusterPaths {
  dir: string;
  slurmConf: string;
  /** munge's key folder (0700, root only). */
  mungeKeyDir: string;
  mungeKey: string;
  /** munge's socket folder (0755, so every account can reach the socket). */
  mungeSocketDir: string;
  mungeSocket: string;
  mungePid: string;
  mungeLog: string;
  mungeSeed: string;
  state: string;
  spool: string;
  ctldPid: string;
  ctldLog: string;
  /** `%n` is the node name (Slurm expands it). */
  slurmdPid: string;
  slurmdLog: string;
}

export function clusterPaths(dir: string): ClusterPaths {
  return {
    dir,
    slurmConf: join(dir, "slurm.conf"),
    mungeKeyDir: join(dir, "munge-key"),
    mungeKey: join(dir, "munge-key", "munge.key"),
    mungeSocketDir: join(dir, "munge-run"),
    mungeSocket: join(dir, "munge-run", "munge.socket"),
    mungePid: join(dir, "munge-key", "munged.pid"),
    mungeLog: join(dir, "munge-key", "munged.log"),
    mungeSeed: join(dir, "munge-key", "munged.seed"),
    state: join(dir, "state"),
    spool: join(dir, "spool"),
    ctldPid: join(dir, "slurmctld.pid"),
    ctldLog: join(dir, "slurmctld.log"),
    slurmdPid: join(dir, "slurmd-%n.pid"),
    slurmdLog: join(dir, "slurmd-%n.log"),
  };
}

/** What {@link slurmConf} needs. */
export interface SlurmConfInput {
  paths: ClusterPaths;
  clusterName: string;
  /** The host name slurmctld runs as (`hostname -s`); it listens on 127.0.0.1. */
  controlHost: string;
  ctldPort: number;
  /** One port per node, `c1` … `cN`. */
  nodePorts: readonly number[];
  cpusPerNode: number;
  partition: string;
  /** The partition's `MaxTime`, in minutes. */
  maxTimeMinutes: number;
}

/** The node names of a cluster of `count` nodes: `c1` … `cN`. */
export function nodeNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `c${i + 1}`);
}

/**
 * slurm.conf for a private cluster on 127.0.0.1 (see the repository's slurm-facts notes):
 * no cgroups, no accounting daemon, loopback only, batch jobs scheduled at once.
 */
export function slurmConf(c: SlurmConfInput): string {
  const nodes = nodeNames(c.nodePorts.length);
  const p = c.paths;
  return `${[
    `ClusterName=${c.clusterName}`,
    `SlurmctldHost=${c.controlHost}(127.0.0.1)`,
    `SlurmctldPort=${c.ctldPort}`,
    "SlurmUser=root",
    "SlurmdUser=root",
    "AuthType=auth/munge",
    "CredType=cred/munge",
    `AuthInfo=socket=${p.mungeSocket}`,
    "CommunicationParameters=NoInAddrAny,NoCtldInAddrAny",
    `StateSaveLocation=${p.state}`,
    `SlurmdSpoolDir=${join(p.spool, "%n")}`,
    `SlurmctldPidFile=${p.ctldPid}`,
    `SlurmdPidFile=${p.slurmdPid}`,
    `SlurmctldLogFile=${p.ctldLog}`,
    `SlurmdLogFile=${p.slurmdLog}`,
    "SlurmctldDebug=info",
    "SlurmdDebug=info",
    "ProctrackType=proctrack/linuxproc",
    "TaskPlugin=task/none",
    "MpiDefault=none",
    "SwitchType=switch/none",
    "SelectType=select/cons_tres",
    "SelectTypeParameters=CR_CPU",
    "SchedulerType=sched/backfill",
    "SchedulerParameters=batch_sched_delay=0",
    "SlurmdParameters=config_overrides",
    "ReturnToService=2",
    "JobCompType=jobcomp/none",
    "AccountingStorageType=accounting_storage/none",
    "InactiveLimit=0",
    // Seconds between SIGTERM and SIGKILL of a cancelled job's processes (sites: 30).
    "KillWait=1",
    "MinJobAge=300",
    "SlurmdTimeout=30",
    ...nodes.map(
      (name, i) => `NodeName=${name} NodeAddr=127.0.0.1 Port=${c.nodePorts[i]} CPUs=${c.cpusPerNode} State=UNKNOWN`,
    ),
    `PartitionName=${c.partition} Nodes=${nodes.join(",")} Default=YES MaxTime=${c.maxTimeMinutes} State=UP`,
  ].join("\n")}\n`;
}

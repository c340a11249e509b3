import { readdir, readFile } from "node:fs/promises";

/** One process as `/proc` shows it (Linux only). */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** Real user id. */
  uid: number;
  /** Single-letter state (`R`, `S`, `Z`…). */
  state: string;
  /** argv joined with spaces (sshd rewrites its own, e.g. `sshd: user@notty`). */
  cmdline: string;
}

/** Reads every process from `/proc`; processes that vanish while reading are skipped. */
export async function listProcesses(): Promise<ProcessInfo[]> {
  const names = await readdir("/proc");
  const out: ProcessInfo[] = [];
  await Promise.all(
    names.map(async (name) => {
      if (!/^\d+$/.test(name)) return;
      try {
        const [stat, status, cmdline] = await Promise.all([
          readFile(`/proc/${name}/stat`, "utf8"),
          readFile(`/proc/${name}/status`, "utf8"),
          readFile(`/proc/${name}/cmdline`, "utf8"),
        ]);
        // The command name in stat is parenthesised and may contain spaces or ")".
        const tail = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const uidLine = /^Uid:\s+(\d+)/m.exec(status);
        out.push({
          pid: Number(name),
          ppid: Number(tail[1]),
          uid: uidLine ? Number(uidLine[1]) : -1,
          state: tail[0] ?? "?",
          cmdline: cmdline.replaceAll("\0", " ").trim(),
        });
      } catch {
        // The process ended while we looked.
      }
    }),
  );
  return out;
}

/** PIDs of every live (non-zombie) descendant of `root`, `root` excluded. */
export function descendantsOf(processes: readonly ProcessInfo[], root: number): ProcessInfo[] {
  const children = new Map<number, ProcessInfo[]>();
  for (const p of processes) {
    const list = children.get(p.ppid) ?? [];
    list.push(p);
    children.set(p.ppid, list);
  }
  const out: ProcessInfo[] = [];
  const stack = [...(children.get(root) ?? [])];
  while (stack.length > 0) {
    const p = stack.pop() as ProcessInfo;
    if (p.state !== "Z") out.push(p);
    stack.push(...(children.get(p.pid) ?? []));
  }
  return out;
}

/** True while `pid` exists and is not a zombie. */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Sends `signal` to each PID, ignoring those already gone. */
export function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone, or not ours to signal.
    }
  }
}

/** Waits (polling `/proc`) until none of `pids` is alive; false when `timeoutMs` passed first. */
export async function waitGone(pids: readonly number[], timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const alive = await Promise.all(pids.map(isAlive));
    if (!alive.includes(true)) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { listProcesses } from "@sremote/testkit/sshd";
import { baseDir } from "../src/openssh/private-dir.js";

/** This test process's private folders of the openssh transport (`<base>/<pid>-<random>`). */
export function ourPrivateDirs(): string[] {
  try {
    return readdirSync(baseDir())
      .filter((n) => n.startsWith(`${process.pid}-`))
      .map((n) => join(baseDir(), n));
  } catch {
    return [];
  }
}

/** Live `ssh` processes (masters and sessions) whose control path lies in one of our private folders. */
export async function ourSshProcesses(): Promise<{ pid: number; cmdline: string }[]> {
  const prefix = join(baseDir(), `${process.pid}-`);
  return (await listProcesses()).filter(
    (p) => p.state !== "Z" && p.cmdline.startsWith("ssh ") && p.cmdline.includes(prefix),
  );
}

/** Polls `check` until it returns true (bounded). */
export async function eventually(check: () => Promise<boolean> | boolean, tries = 100, pauseMs = 50): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  return false;
}

/**
 * Compares the two transports on one private sshd: connect, `exec true`, a 1 KiB
 * putFile+getFile, and (openssh only) the same file round trip through `sftp -b` over the
 * same ControlMaster, to justify files-through-exec. Medians of N runs (default 30).
 *
 *     npx tsx --conditions=@sremote/source packages/connector-ssh/bench/transports.ts [N]
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { sshConnectorOptions, startSshd } from "@sremote/testkit/sshd";
import { sshConnector } from "../src/index.js";

const N = Number(process.argv[2] ?? 30);
const run = promisify(execFile);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const xs: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await fn();
    xs.push(performance.now() - t);
  }
  return median(xs);
}

const sshd = await startSshd();
const local = mkdtempSync(join(tmpdir(), "sremote-bench-transports-"));
try {
  const data = Buffer.alloc(1024, 7);
  for (const transport of ["ssh2", "openssh"] as const) {
    const t0 = performance.now();
    const c = sshConnector({ ...sshConnectorOptions(sshd), transport });
    await c.connect();
    const connectMs = performance.now() - t0;
    const path = `${sshd.home}/bench-${transport}.bin`;
    const exec = await timeIt(() => c.exec(["true"]));
    const files = await timeIt(async () => {
      await c.putFile(path, data);
      await c.getFile(path);
    });
    console.log(
      `${transport}: connect ${connectMs.toFixed(1)} ms, exec true ${exec.toFixed(1)} ms, putFile+getFile 1 KiB ${files.toFixed(1)} ms`,
    );
    if (transport === "openssh") {
      // The same round trip with sftp -b over the connector's own master socket.
      const ps = await run("ps", ["-eo", "args"]);
      const line = ps.stdout
        .split("\n")
        .find((l) => l.startsWith("ssh ") && l.includes(" -N ") && l.includes("sremote-ssh-"));
      const socketDir = /ControlPath=(\S+)\/%C/.exec(line ?? "")?.[1];
      if (socketDir) {
        const { stdout } = await run("ls", [socketDir]);
        const socket = join(socketDir, stdout.trim().split("\n")[0] as string);
        writeFileSync(join(local, "src.bin"), data);
        writeFileSync(
          join(local, "batch"),
          `put ${join(local, "src.bin")} ${path}\nget ${path} ${join(local, "back.bin")}\n`,
        );
        const sftp = await timeIt(() =>
          run("sftp", [
            "-q",
            "-o",
            `ControlPath=${socket}`,
            "-o",
            "ControlMaster=no",
            "-b",
            join(local, "batch"),
            `${sshd.user}@${sshd.host}`,
          ]),
        );
        console.log(
          `openssh: sftp -b put+get 1 KiB over the same master ${sftp.toFixed(1)} ms (no atomic rename, no mode)`,
        );
      }
    }
    await c.close();
  }
} finally {
  rmSync(local, { recursive: true, force: true });
  await sshd.stop();
}

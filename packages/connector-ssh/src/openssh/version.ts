import { execFile } from "node:child_process";
import { ConnectorError } from "@sremote/core";

/** Oldest OpenSSH the transport drives (ProxyJump, `%C`, `-O exit`, ClearAllForwardings). */
export const MIN_OPENSSH = [7, 6] as const;
/** Oldest OpenSSH that honours `SSH_ASKPASS_REQUIRE=force` (needed for password/prompt bridging). */
export const MIN_OPENSSH_ASKPASS = [8, 4] as const;

const cache = new Map<string, Promise<[number, number]>>();

function older(v: readonly [number, number], min: readonly [number, number]): boolean {
  return v[0] < min[0] || (v[0] === min[0] && v[1] < min[1]);
}

/** Runs `ssh -V` once per program path: the OpenSSH version, or why the program cannot be used. */
export function opensshVersion(sshPath: string): Promise<[number, number]> {
  let known = cache.get(sshPath);
  if (!known) {
    known = new Promise((resolve, reject) => {
      const child = execFile(sshPath, ["-V"], { timeout: 10_000 }, (err, stdout, stderr) => {
        const text = `${stderr}${stdout}`;
        const m = /OpenSSH_(\d+)\.(\d+)/.exec(text);
        if (m) return resolve([Number(m[1]), Number(m[2])]);
        const code = (err as NodeJS.ErrnoException | null)?.code;
        reject(
          new ConnectorError(
            "UNAVAILABLE",
            "ssh",
            code === "ENOENT"
              ? `the openssh transport needs the OpenSSH client program, but ${JSON.stringify(sshPath)} was not found (Debian/Ubuntu: apt-get install openssh-client; or use transport: "ssh2")`
              : `${sshPath} is not the OpenSSH client (ssh -V said: ${text.trim().slice(0, 200) || err?.message})`,
            { details: { sshPath } },
          ),
        );
      });
      child.on("error", () => {});
    });
    known.catch(() => cache.delete(sshPath));
    cache.set(sshPath, known);
  }
  return known;
}

/** Rejects `UNAVAILABLE` unless `sshPath` is OpenSSH new enough for what is asked of it. */
export async function checkOpensshVersion(sshPath: string, prompts: boolean): Promise<void> {
  const v = await opensshVersion(sshPath);
  const min = prompts ? MIN_OPENSSH_ASKPASS : MIN_OPENSSH;
  if (older(v, min)) {
    throw new ConnectorError(
      "UNAVAILABLE",
      "ssh",
      `${sshPath} is OpenSSH ${v.join(".")}; the openssh transport needs ${min.join(".")} or newer` +
        (prompts ? " to answer password and keyboard-interactive prompts (SSH_ASKPASS_REQUIRE)" : "") +
        ` (or use transport: "ssh2")`,
      { details: { sshPath, version: v.join(".") } },
    );
  }
}

import { chmodSync, chownSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectCode } from "@sremote/testkit";
import { expect, it, vi } from "vitest";
import { connectorFor, describeSsh, sshd } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describeSsh("putFile over SFTP", () => {
  it("replaces a file atomically (a new inode, renamed over it), leaving no temporary file", async () => {
    await using c = connectorFor();
    const folder = `${sshd().home}/atomic-${process.pid}`;
    await c.exec(["mkdir", "-p", folder]);
    const path = `${folder}/interpreter.sh`;
    await c.putFile(path, Buffer.from("old"), { mode: 0o755 });
    const before = (await c.exec(["stat", "-c", "%i %a", path])).stdout;
    await c.putFile(path, Buffer.from("new"), { mode: 0o640 });
    const after = (await c.exec(["stat", "-c", "%i %a", path])).stdout;
    expect(after.split(" ")[0]).not.toBe(before.split(" ")[0]);
    expect(after.trim().split(" ")[1]).toBe("640");
    expect(Buffer.from(await c.getFile(path)).toString()).toBe("new");
    expect((await c.exec(["ls", "-A", folder])).stdout).toBe("interpreter.sh\n");
    await c.exec(["rm", "-rf", folder]);
  });

  it("a write cut short by its deadline leaves neither the file nor a temporary file", async () => {
    await using c = connectorFor();
    const folder = `${sshd().home}/cut-${process.pid}`;
    await c.exec(["mkdir", "-p", folder]);
    await expectCode(c.putFile(`${folder}/big`, Buffer.alloc(48 * 1024 * 1024, 1), { timeoutMs: 30 }), "TIMEOUT");
    await waitFor("the temporary file to go", async () => (await c.exec(["ls", "-A", folder])).stdout === "");
    await c.exec(["rm", "-rf", folder]);
  });

  it.runIf(process.getuid?.() === 0)(
    "writes in place where the folder forbids new files but the file itself is writable",
    async () => {
      const facts = sshd();
      const uid = statSync(facts.home).uid;
      const folder = mkdtempSync(join(tmpdir(), "sremote-ro-"));
      try {
        chmodSync(folder, 0o755); // owned by root: the test account cannot create files here
        const path = join(folder, "owned");
        writeFileSync(path, "before");
        chownSync(path, uid, uid);
        await using c = connectorFor(facts);
        await c.putFile(path, Buffer.from("after"), { mode: 0o600 });
        expect(Buffer.from(await c.getFile(path)).toString()).toBe("after");
        await expectCode(c.putFile(join(folder, "new"), Buffer.from("x")), "PERMISSION_DENIED");
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
    },
  );
});

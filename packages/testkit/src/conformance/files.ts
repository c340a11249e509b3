import { randomBytes } from "node:crypto";
import { expect } from "vitest";
import { HOSTILE_FILE_NAMES } from "../hostile.js";
import { execOk, remoteExists, remoteFileBytes, remoteFileSize, remoteMode, sha256 } from "../remote-tools.js";
import type { GroupContext } from "./context.js";
import { expectCode } from "./expect-code.js";

const MiB = 1024 * 1024;

/** Group `files`: binary-safe transfers, overwrite, missing files and parents, hostile names. */
export function filesGroup(ctx: GroupContext): void {
  const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);

  for (const [label, data] of [
    ["0 bytes", new Uint8Array(0)],
    ["1 byte", Uint8Array.of(0x00)],
    ["all 256 byte values", allBytes],
  ] as const) {
    ctx.test(`putFile/getFile round-trip ${label}, exactly as the remote side sees it`, async () => {
      const { connector } = ctx;
      const path = ctx.path("bytes");
      await connector.putFile(path, data);
      const back = await connector.getFile(path);
      expect(back).toBeInstanceOf(Uint8Array);
      expect(Buffer.from(back).equals(Buffer.from(data))).toBe(true);
      // The remote file itself, through od: proves the bytes landed, not just round-tripped.
      expect(Buffer.from(await remoteFileBytes(connector, path)).equals(Buffer.from(data))).toBe(true);
      await connector.deleteFile(path);
    });
  }

  ctx.test("putFile/getFile round-trip 8 MiB of random bytes (SHA-256 and size checked)", async () => {
    const { connector } = ctx;
    const data = randomBytes(8 * MiB);
    const path = ctx.path("large");
    await connector.putFile(path, data);
    expect(await remoteFileSize(connector, path)).toBe(data.length);
    const back = await connector.getFile(path);
    expect(back.length).toBe(data.length);
    expect(sha256(back)).toBe(sha256(data));
    await connector.deleteFile(path);
  });

  ctx.test("putFile replaces a longer file entirely", async () => {
    const { connector } = ctx;
    const path = ctx.path("overwrite");
    await connector.putFile(path, Buffer.from("a much longer first version of the file\n"));
    await connector.putFile(path, Buffer.from("short"));
    expect(Buffer.from(await connector.getFile(path)).toString()).toBe("short");
    expect(await execOk(connector, ["cat", path])).toBe("short");
    await connector.deleteFile(path);
  });

  ctx.test("putFile into a missing folder rejects FILE_NOT_FOUND and creates nothing", async () => {
    const { connector } = ctx;
    const parent = ctx.path("missing-parent");
    await expectCode(connector.putFile(`${parent}/file.bin`, Buffer.from("x")), "FILE_NOT_FOUND");
    expect(await remoteExists(connector, parent)).toBe(false);
  });

  ctx.test("getFile of a missing file rejects FILE_NOT_FOUND", async () => {
    await expectCode(ctx.connector.getFile(ctx.path("missing")), "FILE_NOT_FOUND");
  });

  ctx.test("deleteFile removes a file, and deleting a missing file succeeds", async () => {
    const { connector } = ctx;
    const path = ctx.path("delete");
    await connector.putFile(path, Buffer.from("bye"));
    expect(await remoteExists(connector, path)).toBe(true);
    await connector.deleteFile(path);
    expect(await remoteExists(connector, path)).toBe(false);
    await expectCode(connector.getFile(path), "FILE_NOT_FOUND");
    await expect(connector.deleteFile(path)).resolves.toBeUndefined();
    await expect(connector.deleteFile(`${ctx.path("no-folder")}/file`)).resolves.toBeUndefined();
  });

  ctx.test("paths with spaces, quotes, shell characters and unicode work, and leave no stray files", async () => {
    const { connector } = ctx;
    const dir = ctx.path("dir with space 'q' ü");
    await execOk(connector, ["mkdir", dir]);
    for (const name of HOSTILE_FILE_NAMES) {
      const path = `${dir}/${name}`;
      const content = Buffer.from(`content of ${name}\n`);
      await connector.putFile(path, content);
      expect(Buffer.from(await connector.getFile(path)).equals(content)).toBe(true);
      // The remote side finds the file under exactly this name.
      expect(await execOk(connector, ["cat", path])).toBe(content.toString());
    }
    const listing = await execOk(connector, [
      "sh",
      "-c",
      'cd "$1" && for f in * .*; do printf "%s\\0" "$f"; done',
      "sh",
      dir,
    ]);
    const names = listing
      .split("\0")
      .filter((n) => n !== "" && n !== "." && n !== "..")
      .sort();
    // Exactly our files: no temporary files left over from atomic writes.
    expect(names).toEqual([...HOSTILE_FILE_NAMES].sort());
    for (const name of HOSTILE_FILE_NAMES) await connector.deleteFile(`${dir}/${name}`);
    expect(await remoteExists(connector, `${dir}/${HOSTILE_FILE_NAMES[0]}`)).toBe(false);
    await execOk(connector, ["rmdir", dir]);
  });
}

/** Group `file-modes` (capability `fileModes`): modes applied exactly, whatever the remote umask. */
export function fileModesGroup(ctx: GroupContext): void {
  ctx.test(
    "putFile creates files 0600 by default",
    async () => {
      const path = ctx.path("mode-default");
      await ctx.connector.putFile(path, Buffer.from("secret"));
      expect((await remoteMode(ctx.connector, path)).toString(8)).toBe("600");
      await ctx.connector.deleteFile(path);
    },
    { needs: "fileModes" },
  );

  for (const mode of [0o644, 0o755, 0o640, 0o666]) {
    ctx.test(
      `putFile applies mode 0${mode.toString(8)} exactly (not reduced by the umask)`,
      async () => {
        const path = ctx.path(`mode-${mode.toString(8)}`);
        await ctx.connector.putFile(path, Buffer.from("x"), { mode });
        expect((await remoteMode(ctx.connector, path)).toString(8)).toBe(mode.toString(8));
        await ctx.connector.deleteFile(path);
      },
      { needs: "fileModes" },
    );
  }

  ctx.test(
    "overwriting a 0755 file without a mode leaves it 0600",
    async () => {
      const path = ctx.path("mode-overwrite");
      await ctx.connector.putFile(path, Buffer.from("#!/bin/sh\n"), { mode: 0o755 });
      await ctx.connector.putFile(path, Buffer.from("data"));
      expect((await remoteMode(ctx.connector, path)).toString(8)).toBe("600");
      await ctx.connector.deleteFile(path);
    },
    { needs: "fileModes" },
  );
}

import { randomBytes } from "node:crypto";
import { expect } from "vitest";
import { HOSTILE_WORDS, randomHostileStrings } from "../hostile.js";
import { execOk, largeText, parseOdHex, remoteArgv, sha256 } from "../remote-tools.js";
import type { GroupContext } from "./context.js";
import { expectCode } from "./expect-code.js";

const MiB = 1024 * 1024;

/** Group `exec`: exit status, signals, separate stderr, large output, cwd, env, home. */
export function execGroup(ctx: GroupContext): void {
  for (const code of [0, 1, 42, 255]) {
    ctx.test(`reports exit code ${code} as data`, async () => {
      const r = await ctx.connector.exec(["sh", "-c", `exit ${code}`]);
      expect(r).toMatchObject({ exitCode: code, signal: null });
    });
  }

  ctx.test("reports `false` as exit 1 and `true` as exit 0", async () => {
    expect((await ctx.connector.exec(["false"])).exitCode).toBe(1);
    expect((await ctx.connector.exec(["true"])).exitCode).toBe(0);
  });

  ctx.test("reports a command killed by a signal", async () => {
    const r = await ctx.connector.exec(["sh", "-c", "kill -9 $$"]);
    if (ctx.connector.capabilities.signals) {
      expect(r).toMatchObject({ exitCode: null, signal: "SIGKILL" });
    } else {
      // Without signal reporting, the death must still not look like success.
      expect(r.exitCode).not.toBe(0);
    }
  });

  ctx.test("reports a missing program with exit 127 and a message on stderr, as a shell does", async () => {
    const r = await ctx.connector.exec(["sremote-conformance-no-such-program"]);
    expect(r.exitCode).toBe(127);
    expect(r.stderr).not.toBe("");
  });

  ctx.test("keeps stderr separate from stdout", async () => {
    const r = await ctx.connector.exec(["sh", "-c", "printf out; printf err >&2; printf more"]);
    expect(r).toMatchObject({ stdout: "outmore", stderr: "err", exitCode: 0 });
  });

  ctx.test("decodes stdout as UTF-8, replacing invalid bytes", async () => {
    const r = await ctx.connector.exec(["printf", "caf\\303\\251 \\377"]);
    expect(r.stdout).toBe("café \ufffd");
  });

  ctx.test("delivers 8 MiB on stdout and 8 MiB on stderr at once, intact", async () => {
    const { connector } = ctx;
    const text = largeText(8 * MiB);
    const path = ctx.path("large-text");
    await connector.putFile(path, Buffer.from(text));
    // Both pipes fill at the same time: a connector that drains one before the other deadlocks.
    const r = await connector.exec(["sh", "-c", 'cat "$1" >&2 & cat "$1"; wait', "sh", path]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.length).toBe(text.length);
    expect(sha256(r.stdout)).toBe(sha256(text));
    expect(sha256(r.stderr)).toBe(sha256(text));
    await connector.deleteFile(path);
  });

  ctx.test("runs in the given cwd, including one with spaces and unicode", async () => {
    const { connector } = ctx;
    for (const name of ["plain", "with space 'q' ünï"]) {
      const dir = ctx.path(name);
      await execOk(connector, ["mkdir", dir]);
      const physical = await execOk(connector, ["sh", "-c", 'cd "$1" && pwd -P', "sh", dir]);
      expect(await execOk(connector, ["sh", "-c", "pwd -P"], { cwd: dir })).toBe(physical);
      await execOk(connector, ["rmdir", dir]);
    }
  });

  ctx.test("passes env values verbatim (spaces, quotes, newlines, $) and overrides existing ones", async () => {
    const env = {
      SREMOTE_A: "with space",
      SREMOTE_B: `quotes ' " and \\ backslash`,
      SREMOTE_C: "line1\nline2\n",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell syntax that must arrive unexpanded
      SREMOTE_D: "$(id) `id` ${HOME} ; & |",
      SREMOTE_E: "",
      SREMOTE_F: "ünï 中文 🎉",
    };
    const out = await execOk(
      ctx.connector,
      [
        "sh",
        "-c",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
        'printf "%s\\0" "$SREMOTE_A" "$SREMOTE_B" "$SREMOTE_C" "$SREMOTE_D" "${SREMOTE_E-unset}" "$SREMOTE_F"',
      ],
      { env },
    );
    expect(out.split("\0").slice(0, -1)).toEqual([
      env.SREMOTE_A,
      env.SREMOTE_B,
      env.SREMOTE_C,
      env.SREMOTE_D,
      "",
      env.SREMOTE_F,
    ]);
    // Overriding a variable the environment already has.
    expect(await execOk(ctx.connector, ["sh", "-c", 'printf %s "$PATH"'], { env: { PATH: "/usr/bin:/bin" } })).toBe(
      "/usr/bin:/bin",
    );
  });

  ctx.test("gives a command without stdin an empty one (cat ends at once)", async () => {
    const r = await ctx.connector.exec(["cat"]);
    expect(r).toMatchObject({ stdout: "", exitCode: 0 });
  });

  ctx.test("homeDir() is absolute and equals $HOME as commands see it", async () => {
    const home = await ctx.connector.homeDir();
    expect(home.startsWith("/")).toBe(true);
    expect(await execOk(ctx.connector, ["sh", "-c", 'printf %s "$HOME"'])).toBe(home);
  });

  ctx.test("runs with loginEnv: true", async () => {
    const r = await ctx.connector.exec(["sh", "-c", 'printf "%s" "$1"', "sh", "login ok"], { loginEnv: true });
    expect(r.exitCode).toBe(0);
    // A login profile may print a banner first; the command's own output comes last.
    expect(r.stdout.endsWith("login ok")).toBe(true);
  });

  ctx.test("rejects bad argv and env with INVALID_ARGUMENT", async () => {
    await expectCode(ctx.connector.exec([]), "INVALID_ARGUMENT");
    await expectCode(ctx.connector.exec(["printf", "a\0b"]), "INVALID_ARGUMENT");
    await expectCode(ctx.connector.exec(["true"], { env: { "BAD NAME": "x" } }), "INVALID_ARGUMENT");
  });
}

/** Group `argv`: every argv element arrives verbatim, whatever it contains. */
export function argvGroup(ctx: GroupContext): void {
  ctx.test("hostile words arrive verbatim (printf oracle)", async () => {
    expect(await remoteArgv(ctx.connector, HOSTILE_WORDS)).toEqual([...HOSTILE_WORDS]);
  });

  ctx.test("each hostile word alone, first and last arrives verbatim", async () => {
    for (const word of HOSTILE_WORDS) {
      const argv = [word, "middle", word];
      const got = await remoteArgv(ctx.connector, argv);
      expect(got, `word ${JSON.stringify(word)}`).toEqual(argv);
    }
  });

  ctx.test("hostile words arrive byte for byte (od oracle)", async () => {
    const out = await execOk(ctx.connector, [
      "sh",
      "-c",
      'for a in "$@"; do printf "%s" "$a"; printf "\\000"; done | od -An -v -tx1',
      "sh",
      ...HOSTILE_WORDS,
    ]);
    const expected = Buffer.concat(HOSTILE_WORDS.map((w) => Buffer.concat([Buffer.from(w), Buffer.of(0)])));
    expect(Buffer.from(parseOdHex(out)).equals(expected)).toBe(true);
  });

  ctx.test("hostile words arrive verbatim (Python oracle, when python3 is available)", async (t) => {
    const python = await ctx.python();
    if (python === null) return t.skip("no working python3 on the remote side");
    const out = await execOk(ctx.connector, [
      python,
      "-c",
      "import json, sys; sys.stdout.write(json.dumps(sys.argv[1:]))",
      ...HOSTILE_WORDS,
    ]);
    expect(JSON.parse(out)).toEqual([...HOSTILE_WORDS]);
  });

  ctx.test("1,000 random hostile strings arrive verbatim, in batches of 100", async () => {
    const words = randomHostileStrings(1000, ctx.seed);
    for (let i = 0; i < words.length; i += 100) {
      const batch = words.slice(i, i + 100);
      const got = await remoteArgv(ctx.connector, batch);
      for (const [j, word] of batch.entries()) {
        expect(got[j], `randomHostileStrings(1000, ${ctx.seed})[${i + j}]`).toBe(word);
      }
      expect(got.length).toBe(batch.length);
    }
  });
}

/** Group `stdin` (capability `stdin`): exec's `stdin` option, text and bytes, large. */
export function stdinGroup(ctx: GroupContext): void {
  ctx.test(
    "passes text stdin as UTF-8",
    async () => {
      const text = "héllo 中文 🎉\nsecond line\n";
      expect(await execOk(ctx.connector, ["cat"], { stdin: text })).toBe(text);
      expect(await execOk(ctx.connector, ["cat"], { stdin: "" })).toBe("");
    },
    { needs: "stdin" },
  );

  ctx.test(
    "passes all 256 byte values through stdin",
    async () => {
      const bytes = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
      const out = await execOk(ctx.connector, ["od", "-An", "-v", "-tx1"], { stdin: bytes });
      expect(Buffer.from(parseOdHex(out)).equals(Buffer.from(bytes))).toBe(true);
    },
    { needs: "stdin" },
  );

  ctx.test(
    "passes 8 MiB of random bytes through stdin intact",
    async () => {
      const data = randomBytes(8 * MiB);
      const path = ctx.path("stdin-large");
      await execOk(ctx.connector, ["sh", "-c", 'cat > "$1"', "sh", path], { stdin: data });
      expect(sha256(await ctx.connector.getFile(path))).toBe(sha256(data));
      await ctx.connector.deleteFile(path);
    },
    { needs: "stdin" },
  );
}

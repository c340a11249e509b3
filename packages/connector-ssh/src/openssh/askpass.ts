import { chmodSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";

/** Answers one prompt of the system ssh; `undefined` refuses (ssh then treats it as cancelled). */
export type PromptAnswerer = (prompt: string, kind: string) => Promise<string | undefined>;

/** The environment that makes ssh ask through the bridge. */
export interface AskpassBridge {
  env: Record<string, string>;
  close(): Promise<void>;
}

function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

// The helper ssh runs (`$SSH_ASKPASS "<prompt>"`): it passes the prompt to this process over
// a unix socket in the private 0700 folder and prints the answer on its stdout, which is a
// pipe into ssh. The answer never touches a file, an argument list, the environment or a log.
const HELPER = `"use strict";
const net = require("node:net");
const sock = net.connect(process.env.SREMOTE_ASKPASS_SOCKET || "");
const chunks = [];
sock.on("connect", () =>
  sock.end(JSON.stringify({ prompt: process.argv[2] || "", kind: process.env.SSH_ASKPASS_PROMPT || "" })),
);
sock.on("data", (c) => chunks.push(c));
sock.on("error", () => process.exit(1));
sock.on("end", () => {
  const reply = Buffer.concat(chunks);
  if (reply[0] !== 0x31) process.exit(1);
  process.stdout.write(Buffer.concat([reply.subarray(1), Buffer.from("\\n")]), () => process.exit(0));
});
`;

/**
 * Starts the askpass bridge in `dir` (private, 0700): a helper script and the socket it
 * asks. ssh is told to use it with `SSH_ASKPASS_REQUIRE=force` (OpenSSH ≥ 8.4).
 */
export async function startAskpass(dir: string, answer: PromptAnswerer): Promise<AskpassBridge> {
  const socketPath = join(dir, "a.sock");
  const script = join(dir, "askpass.cjs");
  const launcher = join(dir, "askpass");
  writeFileSync(script, HELPER, { mode: 0o600 });
  writeFileSync(launcher, `#!/bin/sh\nexec ${shQuote(process.execPath)} ${shQuote(script)} "$@"\n`, { mode: 0o700 });
  chmodSync(launcher, 0o700);
  const server: Server = createServer({ allowHalfOpen: true }, (conn) => {
    const chunks: Buffer[] = [];
    let size = 0;
    conn.on("error", () => {});
    conn.on("data", (c: Buffer) => {
      size += c.length;
      if (size > 64 * 1024) conn.destroy();
      else chunks.push(c);
    });
    conn.on("end", () => {
      let prompt = "";
      let kind = "";
      try {
        const req = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { prompt?: unknown; kind?: unknown };
        prompt = typeof req.prompt === "string" ? req.prompt : "";
        kind = typeof req.kind === "string" ? req.kind : "";
      } catch {
        conn.end("0");
        return;
      }
      answer(prompt, kind).then(
        (text) => conn.end(text === undefined || /[\r\n]/.test(text) ? "0" : `1${text}`),
        () => conn.end("0"),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);
  server.unref();
  return {
    env: { SSH_ASKPASS: launcher, SSH_ASKPASS_REQUIRE: "force", SREMOTE_ASKPASS_SOCKET: socketPath, DISPLAY: "" },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ssh2 ships no types: this package's own declarations, referenced so that programs
// compiling these sources from another package (the @sremote/source condition) see them.
/**
 * Measures what the README reports: connect time, exec latency, and the request/response
 * latency of one long-lived exec channel running a minimal Python echo loop — through the
 * connector, and through bare ssh2 with and without `setNoDelay(true)` on its socket.
 * Runs against a private sshd (as root: the `sremote-test` account).
 *
 *     npx tsx --conditions=@sremote/source packages/connector-ssh/bench/latency.ts
 */

import { readFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { type SshdFixture, startSshd } from "@sremote/testkit/sshd";
import ssh2, { type ClientChannel } from "ssh2";
import { sshConnector } from "../src/index.js";

const ECHO_LOOP = [
  "import sys, struct",
  "r, w = sys.stdin.buffer, sys.stdout.buffer",
  "while True:",
  "    h = r.read(4)",
  "    if len(h) < 4: break",
  "    w.write(h + r.read(struct.unpack('>I', h)[0])); w.flush()",
].join("\n");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

/** Request/response round trips over a framed echo stream. */
async function echoRounds(stdin: NodeJS.WritableStream, stdout: NodeJS.ReadableStream, n: number, inFlight = 1) {
  const frame = Buffer.alloc(4 + 64, 1);
  frame.writeUInt32BE(64, 0);
  let pending: Array<() => void> = [];
  let buffered = 0;
  stdout.on("data", (d: Buffer) => {
    buffered += d.length;
    while (buffered >= frame.length && pending.length > 0) {
      buffered -= frame.length;
      pending.shift()?.();
    }
  });
  const one = () =>
    new Promise<void>((resolve) => {
      pending.push(resolve);
      stdin.write(frame);
    });
  const times: number[] = [];
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < n) {
        const t = process.hrtime.bigint();
        await one();
        times.push(ms(t));
      }
    }),
  );
  pending = [];
  return { median: median(times), perSecond: (n / ms(t0)) * 1000 };
}

async function bareSsh2(f: SshdFixture, noDelay: boolean) {
  const sock = netConnect({ host: f.host, port: f.port });
  await new Promise((r) => sock.once("connect", r));
  sock.setNoDelay(noDelay);
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once("ready", () => resolve());
    client.once("error", reject);
    client.connect({ sock, username: f.user, privateKey: readFileSync(f.privateKeyPath) });
  });
  const exec = (cmd: string) =>
    new Promise<ClientChannel>((resolve, reject) => client.exec(cmd, (e, ch) => (e ? reject(e) : resolve(ch))));
  const execTimes: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t = process.hrtime.bigint();
    const ch = await exec("true");
    ch.resume();
    await new Promise((r) => ch.once("close", r));
    execTimes.push(ms(t));
  }
  const ch = await exec(`exec /usr/bin/python3 -c '${ECHO_LOOP.replaceAll("'", "'\\''")}'`);
  const echo = await echoRounds(ch, ch, 2000);
  ch.end();
  client.end();
  return { exec: median(execTimes), echo: echo.median };
}

const f = await startSshd();
try {
  const out: Record<string, string> = {};
  for (const noDelay of [false, true]) {
    await bareSsh2(f, noDelay); // warm-up
    const r = await bareSsh2(f, noDelay);
    out[`bare ssh2, setNoDelay(${noDelay}): exec "true"`] = `${r.exec.toFixed(1)} ms`;
    out[`bare ssh2, setNoDelay(${noDelay}): echo round trip`] = `${r.echo.toFixed(3)} ms`;
  }
  const connects: number[] = [];
  for (let i = 0; i < 10; i++) {
    const c = sshConnector({
      host: f.host,
      port: f.port,
      username: f.user,
      privateKeyPath: f.privateKeyPath,
      knownHostsPath: f.knownHostsPath,
      sshConfigPath: false,
      agent: false,
    });
    const t = process.hrtime.bigint();
    await c.connect();
    connects.push(ms(t));
    await c.close();
  }
  out["connector: connect + host key + auth"] = `${median(connects).toFixed(1)} ms`;
  await using c = sshConnector({
    host: f.host,
    port: f.port,
    username: f.user,
    privateKeyPath: f.privateKeyPath,
    knownHostsPath: f.knownHostsPath,
    sshConfigPath: false,
    agent: false,
  });
  const execs: number[] = [];
  for (let i = 0; i < 40; i++) {
    const t = process.hrtime.bigint();
    await c.exec(["true"]);
    execs.push(ms(t));
  }
  out['connector: exec(["true"])'] = `${median(execs.slice(5)).toFixed(1)} ms`;
  const files: number[] = [];
  for (let i = 0; i < 40; i++) {
    const t = process.hrtime.bigint();
    await c.putFile("bench.tmp", Buffer.alloc(1024, 1));
    await c.getFile("bench.tmp");
    files.push(ms(t));
  }
  await c.deleteFile("bench.tmp");
  out["connector: putFile + getFile (1 KiB)"] = `${median(files.slice(5)).toFixed(1)} ms`;
  for (const inFlight of [1, 16]) {
    const p = await c.spawn(["/usr/bin/python3", "-c", ECHO_LOOP]);
    p.stderr.resume();
    const r = await echoRounds(p.stdin, p.stdout, 4000, inFlight);
    p.stdin.end();
    await p.exited;
    out[`connector: spawn echo loop, ${inFlight} in flight`] =
      `${r.median.toFixed(3)} ms median, ${Math.round(r.perSecond)} round trips/s`;
  }
  const native = (() => {
    try {
      return readFileSync(
        new URL("../node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node", import.meta.url),
      )
        ? "built"
        : "missing";
    } catch {
      return "missing";
    }
  })();
  out["ssh2 native crypto binding"] = native;
  for (const [k, v] of Object.entries(out)) console.log(`${k.padEnd(58)} ${v}`);
} finally {
  await f.stop();
}

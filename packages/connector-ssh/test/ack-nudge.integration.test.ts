import { readFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import ssh2 from "ssh2";
import { expect, it, vi } from "vitest";
import { nudgeAcksAfterAuth } from "../src/ack-nudge.js";
import { describeSsh, sshd } from "./helpers.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

describeSsh("ACKs right after authentication (real sshd)", () => {
  // sshd sends packets after authentication that a client has no answer to ("key options"
  // debug lines, hostkeys-00); with Nagle on in sshd and the client's ACK delayed, the first
  // channel's confirmation waited ~40 ms behind them. The nudge must answer them and the
  // channel must work as before.
  it("answers sshd's unanswered post-auth packets, and the first channel works", async () => {
    const facts = sshd();
    const sock = netConnect({ host: facts.host, port: facts.port });
    sock.setNoDelay(true);
    const client = new ssh2.Client();
    const nudges: number[] = [];
    const unforwardIn = client.unforwardIn.bind(client);
    client.unforwardIn = ((address: string, port: number, cb?: never) => {
      nudges.push(port);
      return unforwardIn(address, port, cb);
    }) as typeof client.unforwardIn;
    const ready = new Promise<void>((resolve, reject) => {
      client.on("ready", () => {
        nudgeAcksAfterAuth(client, sock);
        resolve();
      });
      client.on("error", reject);
    });
    client.connect({
      sock,
      username: facts.user,
      privateKey: readFileSync(facts.privateKeyPath),
      hostVerifier: () => true,
    });
    try {
      await ready;
      const out = await new Promise<string>((resolve, reject) => {
        client.exec("echo first-channel", (err, channel) => {
          if (err) return reject(err);
          let text = "";
          channel.on("data", (b: Buffer) => {
            text += b.toString();
          });
          channel.on("close", () => resolve(text));
        });
      });
      expect(out).toBe("first-channel\n");
      expect(nudges.length).toBeGreaterThan(0);
      expect(nudges.length).toBeLessThanOrEqual(16);
    } finally {
      client.end();
    }
  });
});

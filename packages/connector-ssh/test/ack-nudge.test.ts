import { once } from "node:events";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import type { Client as Ssh2Client } from "ssh2";
import { afterEach, describe, expect, it } from "vitest";
import { nudgeAcksAfterAuth } from "../src/ack-nudge.js";

// A real loopback TCP pair; the SSH client is a recorder of what the nudge asks it to send.
const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
});

async function pair(): Promise<{ client: Socket; server: Socket }> {
  const server = createServer();
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const accepted = once(server, "connection");
  const { port } = server.address() as { port: number };
  const client = netConnect({ host: "127.0.0.1", port });
  await once(client, "connect");
  const [peer] = (await accepted) as [Socket];
  sockets.push(client, peer);
  return { client, server: peer };
}

function recorder(sock: Socket, answer = false) {
  const sent: [string, number][] = [];
  const client = {
    unforwardIn(address: string, port: number) {
      sent.push([address, port]);
      sock.write("n");
    },
  } as unknown as Ssh2Client;
  // Stands for ssh2 reading, and answering what it received (a write in the same turn).
  sock.on("data", () => {
    if (answer) sock.write("a");
  });
  return { client, sent };
}

const turn = () => new Promise((resolve) => setTimeout(resolve, 20));

describe("nudgeAcksAfterAuth", () => {
  it("answers data the client left unanswered with a no-reply request, once per arrival", async () => {
    const { client: sock, server } = await pair();
    const { client, sent } = recorder(sock);
    nudgeAcksAfterAuth(client, sock);
    server.write("debug 1");
    await turn();
    server.write("debug 2");
    await turn();
    expect(sent).toEqual([
      ["127.0.0.1", 65535],
      ["127.0.0.1", 65535],
    ]);
  });

  it("sends nothing when the client answered in the same turn (its ACK left with the answer)", async () => {
    const { client: sock, server } = await pair();
    const { client, sent } = recorder(sock, true);
    nudgeAcksAfterAuth(client, sock);
    server.write("confirmation");
    await turn();
    expect(sent).toEqual([]);
  });

  it("stops after `max` nudges and after the window", async () => {
    const { client: sock, server } = await pair();
    const { client, sent } = recorder(sock);
    nudgeAcksAfterAuth(client, sock, { max: 2 });
    for (let i = 0; i < 4; i++) {
      server.write(`x${i}`);
      await turn();
    }
    expect(sent).toHaveLength(2);

    const second = await pair();
    const late = recorder(second.client);
    nudgeAcksAfterAuth(late.client, second.client, { windowMs: 10 });
    await new Promise((resolve) => setTimeout(resolve, 40));
    second.server.write("after the window");
    await turn();
    expect(late.sent).toEqual([]);
    expect(second.client.listenerCount("data")).toBe(1); // only the reader's own
  });
});

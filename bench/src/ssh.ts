import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { RemoteClient } from "@sremote/client";
import { sshConnector } from "@sremote/connector-ssh";
import { type Connector, interpreterPath, parseTarget, type RemoteLayout, shJoin, UsageError } from "@sremote/core";
import { decodeAgentMessage, encodeMessage } from "@sremote/protocol";
import { startSshd } from "@sremote/testkit/sshd";
import type { SshFacts } from "./peers.js";
import { CALL, clientRows, floorAndSessionRows, type Plan } from "./rows.js";
import { type BenchRow, measure } from "./stats.js";

const run = promisify(execFile);

/**
 * The original tool's protocol, driven by the system OpenSSH binaries: a fresh process per
 * step — `scp` the request up, `ssh` the interpreter, `scp` the response down, `ssh rm` twice.
 */
class SeedProtocol {
  readonly #common: string[];
  readonly #dest: string;
  readonly #port: string;
  readonly #layout: RemoteLayout;
  readonly #python: string;
  readonly #localDir: string;

  constructor(o: {
    host: string;
    port: number;
    user: string;
    identity: string;
    knownHosts: string;
    layout: RemoteLayout;
    python: string;
    localDir: string;
  }) {
    this.#common = [
      "-F",
      "/dev/null",
      "-i",
      o.identity,
      "-o",
      `UserKnownHostsFile=${o.knownHosts}`,
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      "BatchMode=yes",
    ];
    this.#port = String(o.port);
    this.#dest = `${o.user}@${o.host}`;
    this.#layout = o.layout;
    this.#python = o.python;
    this.#localDir = o.localDir;
  }

  async call(): Promise<unknown> {
    const id = randomBytes(16).toString("hex");
    const localReq = join(this.#localDir, `${id}.req`);
    const localResp = join(this.#localDir, `${id}.resp`);
    const req = `${this.#layout.tmpDir}/${id}.req`;
    const resp = `${this.#layout.tmpDir}/${id}.resp`;
    await writeFile(localReq, encodeMessage({ v: 1, kind: "call", id, ...CALL }));
    const scp = (from: string, to: string) => run("scp", ["-q", ...this.#common, "-P", this.#port, from, to]);
    const ssh = (argv: string[]) => run("ssh", [...this.#common, "-p", this.#port, this.#dest, shJoin(argv)]);
    await scp(localReq, `${this.#dest}:${req}`);
    await ssh([
      "env",
      `SREMOTE_PYTHON=${this.#python}`,
      "sh",
      interpreterPath(this.#layout),
      req,
      resp,
      this.#layout.endpointDir,
      this.#layout.tmpDir,
      this.#layout.workDir,
    ]);
    await scp(`${this.#dest}:${resp}`, localResp);
    await ssh(["rm", "-f", req]);
    await ssh(["rm", "-f", resp]);
    const msg = decodeAgentMessage(await readFile(localResp));
    await rm(localReq);
    await rm(localResp);
    if (msg.kind !== "result" || !msg.ok) throw new Error(`seed protocol call failed: ${JSON.stringify(msg)}`);
    return msg.value;
  }
}

/** The benchmark's SSH server and a connection to it, shared by the SSH sections. */
export interface SshBench {
  facts: SshFacts;
  connector: Connector;
  /** A private folder in the remote home: agent, temp files. */
  layout: RemoteLayout;
  /** Removes the remote folder, closes the connection, stops a private sshd. */
  close(): Promise<void>;
}

/** Connects to `target` (`auto`: starts the project's private sshd). */
export async function openSshBench(o: {
  target: string;
  identity?: string | undefined;
  knownHosts?: string | undefined;
}): Promise<SshBench> {
  const fixture = o.target === "auto" ? await startSshd({ maxSessions: 64, maxStartups: "64:30:128" }) : undefined;
  let host: string;
  let port: number;
  let user: string;
  let identity = o.identity;
  let knownHosts = o.knownHosts;
  if (fixture) {
    ({ host, port, user } = fixture);
    identity = fixture.privateKeyPath;
    knownHosts = fixture.knownHostsPath;
  } else {
    const t = parseTarget(o.target);
    if (t.kind !== "ssh" || !t.user)
      throw new UsageError(`--ssh expects ssh://user@host[:port] or auto, got ${o.target}`);
    host = t.host;
    port = t.port ?? 22;
    user = t.user;
  }
  if (!identity || !knownHosts) throw new UsageError("--ssh needs --identity KEY and --known-hosts FILE");
  process.stderr.write(`benchmark: SSH to ${user}@${host}:${port}${fixture ? " (private sshd)" : ""}\n`);
  const connector = sshConnector({
    host,
    port,
    username: user,
    privateKeyPath: identity,
    knownHostsPath: knownHosts,
    sshConfigPath: false,
  });
  const home = await connector.homeDir();
  const root = `${home}/.sremote-bench-${randomBytes(4).toString("hex")}`;
  const layout: RemoteLayout = { endpointDir: `${root}/endpoint`, tmpDir: `${root}/tmp`, workDir: root };
  return {
    facts: { host, port, user, identity, knownHosts },
    connector,
    layout,
    close: async () => {
      await connector.exec(["rm", "-rf", root]).catch(() => undefined);
      await connector.close();
      await fixture?.stop();
    },
  };
}

/** Rows for connector `ssh`: floor, session, file over one connection, and the seed's protocol. */
export async function sshRows(bench: SshBench, python: string, plan: Plan): Promise<BenchRow[]> {
  const { connector, layout, facts } = bench;
  const localDir = await mkdtemp(join(tmpdir(), "sremote-bench-seed-"));
  const rows: BenchRow[] = [];
  try {
    const client = new RemoteClient({ connector, python, layout, closeConnector: false, poolSize: 1 });
    try {
      rows.push(...(await floorAndSessionRows(connector, "ssh", python, client, plan)));
      rows.push(...(await clientRows(client, "ssh", "file", plan)));
    } finally {
      await client.close();
    }
    rows.push(...(await opensshRows(bench, python, plan)));
    const seed = new SeedProtocol({ ...facts, layout, python, localDir });
    const m = await measure(() => seed.call(), {
      count: Math.max(5, Math.floor(plan.fileCount / 3)),
      inFlight: 1,
      warmup: 1,
    });
    rows.push({ name: "seed-protocol", connector: "ssh", carrier: "seed", inFlight: 1, ...m });
  } finally {
    await rm(localDir, { recursive: true, force: true });
  }
  return rows;
}

/**
 * The same rows over the system OpenSSH client (`transport: "openssh"`): one ControlMaster,
 * each exec, file and session a multiplexed `ssh` process. A separate connection and folder, so
 * the two transports never share a channel.
 */
async function opensshRows(bench: SshBench, python: string, plan: Plan): Promise<BenchRow[]> {
  const { facts } = bench;
  const connector = sshConnector({
    host: facts.host,
    port: facts.port,
    username: facts.user,
    privateKeyPath: facts.identity,
    knownHostsPath: facts.knownHosts,
    sshConfigPath: false,
    transport: "openssh",
  });
  const root = `${await connector.homeDir()}/.sremote-bench-${randomBytes(4).toString("hex")}`;
  const layout: RemoteLayout = { endpointDir: `${root}/endpoint`, tmpDir: `${root}/tmp`, workDir: root };
  const client = new RemoteClient({ connector, python, layout, closeConnector: false, poolSize: 1 });
  try {
    return [
      ...(await floorAndSessionRows(connector, "ssh-openssh", python, client, plan)),
      ...(await clientRows(client, "ssh-openssh", "file", plan)),
    ];
  } finally {
    await client.close();
    await connector.exec(["rm", "-rf", root]).catch(() => undefined);
    await connector.close();
  }
}

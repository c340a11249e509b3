import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agentDir } from "@sremote/agent";
import { localConnector } from "@sremote/connector-local";
import { sshConnector } from "@sremote/connector-ssh";
import type { Connector } from "@sremote/core";
import { describeUnless, SYSTEM_PYTHON } from "@sremote/testkit";
import { DEFAULT_NEWT_USER, startNewtDouble } from "@sremote/testkit/newt-double";
import { sshConnectorOptions, sshdMissing, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { inlineReply } from "../src/file-carrier.js";
import { RemoteClient } from "../src/index.js";
import { fixturesDir, python } from "./helpers.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The file carrier's round trips (issue 16) and its sweep of stale temp files (issue 15),
// counted on real connectors running the real agent.

type Op = "putFile" | "exec" | "getFile" | "deleteFile" | "deleteFiles";

/** Counts the connector operations a client makes (the connector itself is untouched). */
function counting(connector: Connector): { connector: Connector; ops: Op[] } {
  const ops: Op[] = [];
  for (const op of ["putFile", "exec", "getFile", "deleteFile", "deleteFiles"] as const) {
    const original = connector[op] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    if (!original) continue;
    (connector as unknown as Record<string, unknown>)[op] = (...args: unknown[]) => {
      ops.push(op);
      return original.apply(connector, args);
    };
  }
  return { connector, ops };
}

const tally = (ops: Op[]) =>
  Object.fromEntries(
    ["putFile", "exec", "getFile", "delete"].map((k) => [k, ops.filter((o) => o.startsWith(k)).length]),
  );

describe("inlineReply", () => {
  it("reads the last reply line, after what a login profile printed and before what a wrapper prints", () => {
    const body = Buffer.from([0x81, 0xa1, 0x61, 0x01]);
    expect(inlineReply(`welcome\nsremote-reply:${body.toString("base64")}\n`)).toEqual(body);
    expect(inlineReply(`sremote-reply:${body.toString("base64")}\nwrapper: done\n`)).toEqual(body);
    expect(inlineReply(`sremote-reply:AAAA\nsremote-reply:${body.toString("base64")}`)).toEqual(body);
    expect(inlineReply("sremote-reply-file\n")).toBe("file");
    expect(inlineReply("")).toBeUndefined();
    expect(inlineReply("no reply\n")).toBeUndefined();
    expect(inlineReply("xsremote-reply-file\n")).toBeUndefined();
    expect(inlineReply("sremote-reply-filex\n")).toBeUndefined();
  });
});

interface Target {
  name: string;
  missing: string | null;
  start(): Promise<{ connector: Connector; tmpDir: string; workDir: string; python: string; stop(): Promise<void> }>;
}

const targets: Target[] = [
  {
    name: "local",
    missing: null,
    async start() {
      const tmpDir = mkdtempSync(join(tmpdir(), "sremote-fault-fc-"));
      return {
        connector: localConnector(),
        tmpDir,
        workDir: fixturesDir,
        python,
        stop: async () => rmSync(tmpDir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: "ssh",
    missing: sshdMissing(),
    async start() {
      const sshd = await startSshd();
      const connector = sshConnector(sshConnectorOptions(sshd));
      const workDir = `${sshd.home}/work`;
      await connector.exec(["mkdir", "-p", workDir]);
      await connector.putFile(`${workDir}/sremote_testmod.py`, readFixture("sremote_testmod.py"));
      return {
        connector,
        tmpDir: `${sshd.home}/fc-tmp`,
        workDir,
        python: SYSTEM_PYTHON,
        stop: async () => {
          await connector.close();
          await sshd.stop();
        },
      };
    },
  },
  {
    name: "newt",
    missing: null,
    async start() {
      const double = await startNewtDouble();
      const { newtConnector } = await import("@sremote/connector-newt");
      const connector = newtConnector({
        machine: "cori",
        baseUrl: double.baseUrl,
        credentials: { username: DEFAULT_NEWT_USER.username, password: DEFAULT_NEWT_USER.password },
      });
      return {
        connector,
        tmpDir: join(double.homeDir(DEFAULT_NEWT_USER.username), "fc-tmp"),
        workDir: fixturesDir,
        python,
        stop: async () => {
          await connector.close();
          await double.close();
        },
      };
    },
  },
];

function readFixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(fixturesDir, name)));
}

for (const target of targets) {
  describeUnless(target.missing)(`file carrier round trips over ${target.name}`, () => {
    let env: Awaited<ReturnType<Target["start"]>>;
    let client: RemoteClient;
    let ops: Op[];

    beforeAll(async () => {
      env = await target.start();
      const counted = counting(env.connector);
      ops = counted.ops;
      client = new RemoteClient({
        connector: counted.connector,
        python: env.python,
        mode: "file",
        autoInstallAgent: target.name !== "ssh" ? false : undefined,
        closeConnector: false,
        layout: {
          endpointDir: target.name === "ssh" ? `${env.tmpDir}-endpoint` : agentDir(),
          tmpDir: env.tmpDir,
          workDir: env.workDir,
        },
      });
      expect((await client.call("math", "sqrt", [4])).value).toBe(2); // installs, creates the temp folder
    });
    afterAll(async () => {
      await client?.close();
      await env?.stop();
    });

    it("costs one upload and one command per call, with nothing to download or delete", async () => {
      ops.length = 0;
      for (let i = 0; i < 5; i++) expect((await client.call("sremote_testmod", "add", [i, 1])).value).toBe(i + 1);
      expect(tally(ops)).toEqual({ putFile: 5, exec: 5, getFile: 0, delete: 0 });
      expect(await leftovers(env.connector, env.tmpDir)).toEqual([]);
    });

    it("reads a response over the inline limit from its file, and deletes only that file", async () => {
      ops.length = 0;
      const r = await client.call<Uint8Array>("sremote_testmod", "big", [2_000_000]);
      expect(r.value.length).toBeGreaterThanOrEqual(2_000_000);
      expect(tally(ops)).toEqual({ putFile: 1, exec: 1, getFile: 1, delete: 1 });
      for (let i = 0; i < 100 && (await leftovers(env.connector, env.tmpDir)).length > 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(await leftovers(env.connector, env.tmpDir)).toEqual([]);
    });
  });
}

async function leftovers(connector: Connector, dir: string): Promise<string[]> {
  const r = await connector.exec(["ls", "-A", dir]);
  return r.stdout.split("\n").filter((l) => l !== "" && l !== "once");
}

describe("maxFrameBytes on the file carrier", () => {
  it("refuses a request over the limit before uploading, and the agent refuses a result over it", async () => {
    const tmpDir = mkdtempSync(join(tmpdir(), "sremote-fc-limit-"));
    const { connector, ops } = counting(localConnector());
    const client = new RemoteClient({
      connector,
      python,
      mode: "file",
      maxFrameBytes: 64 * 1024,
      autoInstallAgent: false,
      layout: { endpointDir: agentDir(), tmpDir, workDir: fixturesDir },
    });
    try {
      const tooBig = await client.call("sremote_testmod", "echo", [new Uint8Array(100_000)]).catch((e: unknown) => e);
      expect(tooBig).toMatchObject({ code: "INVALID_ARGUMENT" });
      expect(String((tooBig as Error).message)).toMatch(/exceeds the frame limit of 65536 bytes/);
      expect(ops.filter((o) => o === "putFile" || o === "exec")).toEqual([]);
      const result = await client.call("sremote_testmod", "big", [200_000]).catch((e: unknown) => e);
      expect(String((result as Error).message)).toMatch(/over the frame limit of 65536 bytes/);
      expect((await client.call("math", "sqrt", [4])).value).toBe(2);
      expect(readdirSync(tmpDir)).toEqual([]);
    } finally {
      await client.close();
      rmSync(tmpDir, { recursive: true, force: true });
    }
  });
});

describe("stale temp files of clients that are gone", () => {
  it("are removed by a new client's first call; a live client's files and foreign files stay", async () => {
    const tmpDir = mkdtempSync(join(tmpdir(), "sremote-sweep-"));
    try {
      const hoursAgo = new Date(Date.now() - 2 * 3600_000);
      const dead = [
        "a".repeat(32) + ".req",
        "b".repeat(32) + ".resp",
        "c".repeat(32) + ".resp.part",
        `.${"d".repeat(32)}.req.0a1b2c3d4e5f.sremote-tmp`,
      ];
      const foreign = ["results.req", "keep.txt"];
      for (const name of [...dead, ...foreign]) {
        writeFileSync(join(tmpDir, name), "x");
        utimesSync(join(tmpDir, name), hoursAgo, hoursAgo);
      }
      // a live client mid-upload: a fresh file
      const live = `${"e".repeat(32)}.req`;
      writeFileSync(join(tmpDir, live), "x");
      const client = new RemoteClient({
        connector: localConnector(),
        python,
        mode: "file",
        autoInstallAgent: false,
        layout: { endpointDir: agentDir(), tmpDir, workDir: fixturesDir },
      });
      try {
        expect((await client.call("math", "sqrt", [9])).value).toBe(3);
        expect(readdirSync(tmpDir).sort()).toEqual([...foreign, live].sort());
        // once per client: a dead client's file that turns stale later waits for the next client
        writeFileSync(join(tmpDir, dead[0] as string), "x");
        utimesSync(join(tmpDir, dead[0] as string), hoursAgo, hoursAgo);
        expect((await client.call("math", "sqrt", [16])).value).toBe(4);
        expect(readdirSync(tmpDir)).toContain(dead[0]);
      } finally {
        await client.close();
      }
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
  });
});

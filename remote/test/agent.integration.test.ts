import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { localConnector } from "@sremote/connector-local";
import {
  type AgentMessage,
  decodeAgentMessage,
  encodeFrame,
  encodeMessage,
  FrameDecoder,
  type ResultMessage,
} from "@sremote/protocol";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AGENT_PROTOCOL_VERSION, AGENT_VERSION, syncAgent } from "../src/index.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The real interpreter behind `python3` (pyenv's shim costs ~120 ms a start).
const python = execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();

describe("the agent uploaded by syncAgent answers the TypeScript codec", () => {
  let root: string;
  let endpoint: string;
  let tmp: string;
  let work: string;
  const connector = localConnector();

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "sremote-agent-it-"));
    endpoint = join(root, "endpoint");
    tmp = join(endpoint, "tmp");
    work = join(root, "work");
    await syncAgent(connector, endpoint);
    execFileSync("mkdir", [work]);
    writeFileSync(
      join(work, "labmod.py"),
      "def describe(x, *, unit='m'):\n    print('describing')\n    return {'x': x, 'unit': unit, 'type': type(x).__name__}\n",
    );
  });
  afterAll(async () => {
    await connector.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("file carrier: request encoded here, response decoded here", async () => {
    const id = "0123456789abcdef0123456789abcdef";
    const req = join(tmp, `${id}.req`);
    const resp = join(tmp, `${id}.resp`);
    execFileSync("mkdir", ["-p", "-m", "700", tmp]);
    const request = encodeMessage({
      v: 1,
      kind: "call",
      id,
      module: "labmod",
      function: "describe",
      args: [new Map<unknown, unknown>([[1, new Set(["a"])]])],
      kwargs: { unit: "km" },
      requires: ["labmod"],
    });
    await connector.putFile(req, request, { mode: 0o600 });
    const run = await connector.exec(["sh", join(endpoint, "interpreter.sh"), req, resp, endpoint, tmp, work], {
      env: { SREMOTE_PYTHON: python },
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(statSync(resp).mode & 0o777).toBe(0o600);
    const msg = decodeAgentMessage(readFileSync(resp)) as ResultMessage;
    expect(msg).toMatchObject({
      kind: "result",
      id,
      ok: true,
      stdout: "describing\n",
      stderr: "",
      modules: { labmod: "" },
    });
    expect(msg.value).toEqual({ x: new Map([[1, new Set(["a"])]]), unit: "km", type: "dict" });
    expect(msg.agent).toMatchObject({ version: AGENT_VERSION, protocol: AGENT_PROTOCOL_VERSION });
  });

  it("session carrier: hello, calls matched by id, pong, shutdown", async () => {
    const proc = await connector.spawn(
      ["sh", join(endpoint, "interpreter.sh"), "--serve", endpoint, tmp, work, "--workers", "2"],
      {
        env: { SREMOTE_PYTHON: python },
      },
    );
    const decoder = new FrameDecoder();
    const received: AgentMessage[] = [];
    let wake: () => void = () => {};
    proc.stdout.on("data", (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) received.push(decodeAgentMessage(frame));
      wake();
    });
    const next = async (): Promise<AgentMessage> => {
      const deadline = Date.now() + 30_000;
      while (received.length === 0) {
        if (Date.now() > deadline) throw new Error("no frame from the agent");
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 200);
        });
      }
      return received.shift()!;
    };
    const send = (m: Parameters<typeof encodeMessage>[0]) => proc.stdin.write(encodeFrame(encodeMessage(m)));

    const hello = await next();
    expect(hello).toMatchObject({ kind: "hello", agent: { version: AGENT_VERSION, workers: 2 } });
    send({ v: 1, kind: "call", id: "a", module: "labmod", function: "describe", args: [10n ** 18n] });
    send({ v: 1, kind: "call", id: "b", module: "math", function: "sqrt", args: [2] });
    send({ v: 1, kind: "ping", id: "p" });
    const got = new Map<string, AgentMessage>();
    for (let i = 0; i < 3; i++) {
      const m = await next();
      got.set((m as { id: string }).id, m);
    }
    expect(got.get("p")).toEqual({ v: 1, kind: "pong", id: "p" });
    expect((got.get("a") as ResultMessage).value).toEqual({ x: 10n ** 18n, unit: "m", type: "int" });
    expect((got.get("b") as ResultMessage).value).toBeCloseTo(Math.SQRT2);
    send({ v: 1, kind: "shutdown" });
    proc.stdin.end();
    expect(await proc.exited).toEqual({ exitCode: 0, signal: null });
  });
});

// One bulk-data measurement in a fresh Node process, so that its peak RSS is its own:
// `node bulk-child.mjs '<BulkSpec JSON>'` prints one BulkMeasurement as JSON on stdout.
// Plain JavaScript run by plain node (no TypeScript loader, whose ~50 MB would count in the
// client's peak RSS); the types are in bulk.ts.
import { readFileSync } from "node:fs";
import { agentDir } from "@sremote/agent";
import { RemoteClient } from "@sremote/client";
import { localConnector } from "@sremote/connector-local";
import { sshConnector } from "@sremote/connector-ssh";

function connectorFor(spec) {
  if (!spec.ssh) return localConnector();
  const f = spec.ssh;
  return sshConnector({
    host: f.host,
    port: f.port,
    username: f.user,
    privateKeyPath: f.identity,
    knownHostsPath: f.knownHosts,
    sshConfigPath: false,
    ...(f.transport ? { transport: f.transport } : {}),
  });
}

function payloadOf(n) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 4096) b[i] = (i >>> 12) & 0xff;
  return b;
}

function hwm(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function catOneWay(connector, n, repeat) {
  const spawn = connector.spawn?.bind(connector);
  if (!spawn) throw new Error(`${connector.name} cannot spawn`);
  const payload = payloadOf(n);
  const each = [];
  for (let i = 0; i < repeat; i++) {
    const proc = await spawn(["sh", "-c", "cat >/dev/null"]);
    const t0 = performance.now();
    proc.stdin.end(payload);
    await proc.exited;
    each.push(performance.now() - t0);
  }
  return each;
}

async function sessionEcho(connector, spec) {
  const client = new RemoteClient({
    connector,
    python: spec.python,
    layout: spec.layout,
    autoInstallAgent: spec.ssh !== undefined,
    closeConnector: false,
    poolSize: 1,
  });
  try {
    const pid = (await client.call("os", "getpid", [], { mode: "session" })).value;
    const clientBaseRss = process.memoryUsage().rss;
    const payload = payloadOf(spec.bytes);
    const each = [];
    for (let i = 0; i < (spec.repeat ?? 1); i++) {
      const t0 = performance.now();
      const r = await client.call("builtins", "bytes", [payload], { mode: "session" });
      each.push(performance.now() - t0);
      const v = r.value;
      if (!(v instanceof Uint8Array) || v.byteLength !== spec.bytes || v[4096 * 3] !== payload[4096 * 3]) {
        throw new Error("the echo did not return the payload");
      }
    }
    return {
      ms: each[0],
      lastMs: each[each.length - 1],
      clientPeakRss: process.resourceUsage().maxRSS * 1024,
      clientBaseRss,
      agentPeakRss: hwm(pid),
    };
  } finally {
    await client.close();
  }
}

const spec = JSON.parse(process.argv[2]);
if (!spec.ssh) spec.layout.endpointDir ||= agentDir();
const connector = connectorFor(spec);
try {
  let out;
  if (spec.kind === "cat-oneway") {
    const clientBaseRss = process.memoryUsage().rss;
    const each = await catOneWay(connector, spec.bytes, spec.repeat ?? 1);
    out = {
      ms: each[0],
      lastMs: each[each.length - 1],
      clientPeakRss: process.resourceUsage().maxRSS * 1024,
      clientBaseRss,
    };
  } else {
    out = await sessionEcho(connector, spec);
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await connector.close();
}

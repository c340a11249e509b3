// SRemote quickstart: a throwaway local endpoint, then the calls users make every day.
// Run it with `npm run demo` from the repository root.
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { RemoteClient, RemoteExecError } from "@sremote/client";
import { localConnector } from "@sremote/connector-local";

const here = fileURLToPath(new URL("..", import.meta.url));
// The real interpreter behind `python3` (pyenv-style shims cost ~100 ms per start).
const python = execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();
const scratch = await mkdtemp(join(tmpdir(), "sremote-quickstart-"));

const section = (title: string) => console.log(`\n── ${title} ${"─".repeat(Math.max(0, 60 - title.length))}`);

try {
  // A throwaway endpoint: the client uploads the agent there before the first call.
  await using client = new RemoteClient({
    connector: localConnector(),
    python,
    layout: { endpointDir: join(scratch, "endpoint"), tmpDir: join(scratch, "tmp"), workDir: join(here, "python") },
  });

  section("positional arguments: math.hypot(3, 4)");
  console.log((await client.call("math", "hypot", [3, 4])).value);

  section("keyword arguments: demo_lab.describe([...], label='rainfall')");
  const described = await client.call("demo_lab", "describe", [[12.5, 7, 3.25, 9]], { kwargs: { label: "rainfall" } });
  console.log("value: ", described.value);
  console.log("stdout:", JSON.stringify(described.stdout), "← printed remotely, captured per call");

  section("environment: registerEnv, then os.getenv");
  client.registerEnv("SREMOTE_GREETING", "hello from Node");
  client.registerEnv("HOME", "/not/used", { onlyIfUnset: true }); // HOME is set remotely: kept
  console.log("SREMOTE_GREETING =", (await client.call("os", "getenv", ["SREMOTE_GREETING"])).value);
  console.log("HOME             =", (await client.call("os", "getenv", ["HOME"])).value);

  section("typed module proxy");
  const posixpath = client.module<{ join(...parts: string[]): string }>("posixpath");
  console.log(await posixpath.join("/data", "runs", "42"));

  section("bytes and datetimes travel as themselves");
  const packed = await client.call<Uint8Array>("zlib", "compress", [new TextEncoder().encode("sremote ".repeat(50))]);
  console.log(
    `zlib.compress → Uint8Array(${packed.value.length}):`,
    Buffer.from(packed.value.slice(0, 12)).toString("hex"),
    "…",
  );
  const when = await client.call<Date>("email.utils", "parsedate_to_datetime", ["Sat, 28 Nov 2026 10:00:00 +0100"]);
  console.log(
    "email.utils.parsedate_to_datetime →",
    when.value instanceof Date ? `Date ${when.value.toISOString()}` : when.value,
  );

  section("a remote exception, with its traceback");
  try {
    await client.call("demo_lab", "load_config", ["/nonexistent/settings.toml"]);
  } catch (err) {
    if (!(err instanceof RemoteExecError)) throw err;
    console.log(`${err.name} [${err.code}] kind=${err.kind} type=${err.type}`);
    console.log(
      err.traceback
        .trimEnd()
        .split("\n")
        .map((l) => `  │ ${l}`)
        .join("\n"),
    );
  }

  section("per-call latency by carrier (math.sqrt, 1 call in flight)");
  const rows: string[] = [];
  for (const mode of ["session", "file"] as const) {
    const times: number[] = [];
    for (let i = 0; i < (mode === "session" ? 200 : 20); i++) {
      times.push((await client.call("math", "sqrt", [2], { mode })).durationMs);
    }
    times.sort((a, b) => a - b);
    const q = (p: number) => (times[Math.floor((times.length - 1) * p)] as number).toFixed(2);
    rows.push(`${mode.padEnd(8)} ${String(times.length).padStart(5)} ${q(0.5).padStart(10)} ${q(0.9).padStart(10)}`);
  }
  console.log(`carrier  calls  median ms     p90 ms\n${rows.join("\n")}`);
  console.log("\nThe session carrier keeps one Python agent running; the file carrier starts Python for every call.");
} finally {
  await rm(scratch, { recursive: true, force: true });
}

/**
 * One `map` of N inputs over local:, in a process of its own, printing the process's peak RSS
 * as one JSON line: run by map-memory.integration.test.ts (opt-in) to compare input counts.
 * Usage: tsx --conditions=@sremote/source map-memory-child.ts <N> [concurrency]
 */
import { localClient } from "./helpers.js";

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 10_000);
  const concurrency = Number(process.argv[3] ?? 64);
  const { client, dispose } = localClient({ poolSize: 2 });
  const started = performance.now();
  let answered = 0;
  let wrong = 0;
  function* inputs() {
    for (let i = 0; i < n; i++) yield [i];
  }
  try {
    for await (const r of client.map("sremote_testmod", "echo", inputs(), { concurrency })) {
      if (!r.ok || r.index !== answered || r.value !== answered) wrong++;
      answered++;
    }
  } finally {
    await client.close();
    dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  const maxRssMiB = process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
  process.stdout.write(
    `${JSON.stringify({ n, concurrency, answered, wrong, maxRssMiB: Math.round(maxRssMiB * 10) / 10, callsPerSecond: Math.round(n / seconds) })}\n`,
  );
}

await main();

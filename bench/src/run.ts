// Entry point of `pnpm bench`.
import { runBench } from "./main.js";

process.exitCode = await runBench(process.argv.slice(2));

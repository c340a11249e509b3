// Entry point of `npm run bench`.
import { runBench } from "./main.js";

process.exitCode = await runBench(process.argv.slice(2));

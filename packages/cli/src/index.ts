export { EXIT, exitCodeFor, installExitCodeFor } from "./exit-codes.js";
export type { CliIO } from "./io.js";
export { main } from "./main.js";
export { type ConnectionFlags, type OpenedTarget, openTarget, resolvePython } from "./targets.js";
export { formatJson, formatReadable, parseArgument } from "./values.js";

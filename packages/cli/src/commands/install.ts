import type { Command } from "commander";
import type { CliIO } from "../io.js";

/**
 * Registers `sremote install` and `sremote uninstall` (written with the installer work;
 * until then the commands do not exist).
 */
export function registerInstallCommands(_program: Command, _io: CliIO, _setStatus: (status: number) => void): void {}

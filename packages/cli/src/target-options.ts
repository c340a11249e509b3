import type { Command } from "commander";

/** Commander's collector for repeatable options. */
export const collect = (value: string, previous: string[]) => [...previous, value];

/** The connection flags every command that takes a target accepts (see {@link ConnectionFlags}). */
export function addTargetOptions(cmd: Command, python = true): Command {
  if (python) {
    cmd.option("--python <path>", "Python executable on the remote side (default: the endpoint's, else python3)");
  }
  return cmd
    .option("--newt-url <url>", "NEWT base URL (default: $SREMOTE_NEWT_URL, else https://newt.nersc.gov/newt)")
    .option("--identity <file>", "SSH private key file")
    .option("--known-hosts <file>", "SSH known_hosts file (default: ~/.ssh/known_hosts)")
    .option("--ssh-config <file>", "ssh config file (default: ~/.ssh/config when present)")
    .option("--password-env <VAR>", "read the SSH password from this environment variable");
}

/** Help text of the `<target>` argument. */
export const TARGET_HELP = "local:[/endpoint/dir], ssh://user@host[:port], newt://machine";

import { UsageError } from "@sremote/core";
import type { Command } from "commander";

/** Commander's collector for repeatable options. */
export const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/**
 * The connection flags every command that takes a target accepts (see {@link ConnectionFlags}),
 * with `--python` described by `python` (`false`: no `--python`).
 */
export function addTargetOptions(
  cmd: Command,
  python: string | false = "Python executable on the remote side (default: the endpoint's, else python3)",
): Command {
  if (python !== false) cmd.option("--python <path>", python);
  return cmd
    .option("--newt-url <url>", "NEWT base URL (default: $SREMOTE_NEWT_URL, else https://newt.nersc.gov/newt)")
    .option(
      "--sfapi-url <url>",
      "Superfacility API base URL (default: $SREMOTE_SFAPI_URL, else https://api.nersc.gov/api/v1.2)",
    )
    .option(
      "--token-url <url>",
      "SFAPI token URL (default: $SREMOTE_SFAPI_TOKEN_URL, else https://oidc.nersc.gov/c2id/token)",
    )
    .option(
      "--key-file <file>",
      "SFAPI client key file from Iris (default: $SREMOTE_SFAPI_KEY_FILE; or a ready token in $SREMOTE_SFAPI_TOKEN)",
    )
    .option("--identity <file>", "SSH private key file")
    .option("--known-hosts <file>", "SSH known_hosts file (default: ~/.ssh/known_hosts)")
    .option("--ssh-config <file>", "ssh config file (default: ~/.ssh/config when present)")
    .option("--password-env <VAR>", "read the SSH password from this environment variable")
    .option(
      "--transport <kind>",
      "SSH implementation: ssh2 (built in, default), openssh (the system ssh: certificates, Kerberos, MFA, your whole ssh_config) or auto",
    );
}

/** Help text of the `<target>` argument. */
export const TARGET_HELP = "local:[/endpoint/dir], ssh://user@host[:port], newt://machine, sfapi://machine";

/** `--timeout <ms>`: a positive number of milliseconds, or undefined when not given. */
export function parseTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`--timeout expects milliseconds > 0, got ${JSON.stringify(text)}`);
  return n;
}

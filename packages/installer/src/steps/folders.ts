import { commandFailure } from "../command-failures.js";
import { MARKER_FILE, STATE_FILE } from "../endpoint-files.js";
import { InstallError } from "../errors.js";
import { isInside, locationDir } from "../paths.js";
import { remoteScript, SURVEY_FOREIGN } from "../remote-scripts.js";
import { type ResolvedRun, SHORT_TIMEOUT, type Survey } from "./context.js";

function parseSurvey(stdout: string): Survey {
  const s: Survey = { changed: [], has: new Set(), stale: [], owner: true };
  for (const line of stdout.split("\n")) {
    const space = line.indexOf(" ");
    const word = line.slice(0, space);
    const rest = line.slice(space + 1);
    if (word === "changed") s.changed.push(rest);
    else if (word === "has") s.has.add(rest);
    else if (word === "stale") s.stale.push(rest);
    else if (word === "owner") s.owner = rest === "yes";
  }
  return s;
}

/**
 * `folders`: creates the endpoint (0700, or 0755 shared) and the temp and working folders
 * (0700); refuses a non-empty folder that is not an endpoint, or one of another account.
 * Returns what the endpoint holds.
 */
export async function prepareFolders(r: ResolvedRun): Promise<Survey> {
  const { homeDir, layout, shared, umask, locationText } = r.plan;
  const endpoint = layout.endpointDir;
  const step = await r.recorder.run("folders", `checking ${endpoint}`, async () => {
    const needLocDir = locationText !== null && !isInside(locationDir(homeDir), endpoint);
    const res = await r.remote.run(
      [
        "sh",
        "-c",
        remoteScript("survey.sh"),
        "sh",
        endpoint,
        layout.tmpDir,
        layout.workDir,
        needLocDir ? locationDir(homeDir) : "",
        shared ? "755" : "700",
        umask,
        STATE_FILE,
        MARKER_FILE,
      ],
      { step: "folders", timeoutMs: SHORT_TIMEOUT },
    );
    if (res.exitCode === SURVEY_FOREIGN) {
      throw new InstallError("INVALID_ARGUMENT", res.stderr.replace(/^sremote-install: /, "").trim(), {
        step: "folders",
        fix: "install into a new or empty folder (--dir <folder>), or uninstall what is there first",
      });
    }
    if (res.exitCode !== 0) {
      // The folder that refused: the nearest existing parent of the one that could not be made.
      const blocked = /^blocked (.+)$/m.exec(res.stdout)?.[1] ?? endpoint;
      throw commandFailure("folders", `preparing ${endpoint}`, res, blocked, {
        fix: `check that this account can create and write ${endpoint} (ls -ld ${blocked}), or choose another folder with --dir`,
      });
    }
    const survey = parseSurvey(res.stdout);
    if (!survey.owner) {
      throw new InstallError("PERMISSION_DENIED", `${endpoint} belongs to another account`, {
        step: "folders",
        fix: `ask its owner to run sremote install; to use it as a shared endpoint: sremote attach <target> ${endpoint}`,
      });
    }
    return {
      changed: survey.changed.length > 0,
      skipped: survey.changed.length === 0,
      message: survey.changed.length > 0 ? survey.changed.join("; ") : "folders in place",
      survey,
    };
  });
  return step.survey;
}

import { commandFailure } from "../command-failures.js";
import { PREAMBLE_FILE, PYTHON_FILE, STATE_FILE } from "../endpoint-files.js";
import { wrap } from "../remote-commands.js";
import type { PythonRecord } from "../state.js";
import { encode, endpointPath, markDirty, type SurveyedRun, saveState, wrapOptions } from "./context.js";

/**
 * `config`: writes `preamble.sh` and `python` (and records the Python in the state); removes
 * the build folders a killed install left, once nothing uses them.
 */
export async function writeConfig(r: SurveyedRun): Promise<void> {
  const { plan, survey } = r;
  await r.recorder.run("config", "checking preamble.sh and the python file", async () => {
    const changes: string[] = [];
    const has = survey.has;
    const { previous, preamble, state } = plan;
    const force = r.options.force;
    if (!has.has(STATE_FILE)) {
      // Claim the folder before writing into it: an install ended between writing `python`
      // and the state left a folder the next install refused as foreign ("it holds python").
      await saveState(r);
      has.add(STATE_FILE);
      changes.push(`wrote ${STATE_FILE}`);
    }
    const samePreamble =
      !force &&
      previous !== null &&
      JSON.stringify(previous.preamble) === JSON.stringify(preamble) &&
      has.has(PREAMBLE_FILE) === preamble.length > 0;
    if (!samePreamble) {
      if (preamble.length > 0) {
        await markDirty(r);
        const text = `# Written by sremote install; interpreter.sh sources it before starting Python.\n${preamble.join("\n")}\n`;
        await r.connector.putFile(endpointPath(r, PREAMBLE_FILE), encode(text), { ...r.op, mode: plan.fileMode });
        has.add(PREAMBLE_FILE);
        changes.push(`wrote ${PREAMBLE_FILE}`);
      } else if (has.has(PREAMBLE_FILE)) {
        await markDirty(r);
        await r.connector.deleteFile(endpointPath(r, PREAMBLE_FILE), r.op);
        has.delete(PREAMBLE_FILE);
        changes.push(`removed ${PREAMBLE_FILE}`);
      }
      state.preamble = [...preamble];
    }
    const base = r.python.base;
    if (force || !has.has(PYTHON_FILE) || state.python?.executable !== base.executable) {
      await markDirty(r);
      await r.connector.putFile(endpointPath(r, PYTHON_FILE), encode(`${base.executable}\n`), {
        ...r.op,
        mode: plan.fileMode,
      });
      changes.push(`wrote ${PYTHON_FILE} (${base.executable})`);
    }
    const record: PythonRecord = {
      requested: plan.requestedPython,
      executable: base.executable,
      version: base.version,
    };
    if (JSON.stringify(state.python) !== JSON.stringify(record) || changes.length > 0) {
      await markDirty(r);
      state.python = record;
      await saveState(r);
    }
    // Build folders an interrupted install left behind, removed once nothing uses them.
    if (survey.stale.length > 0) {
      await markDirty(r);
      const res = await r.remote.run(wrap(["rm", "-rf", "--", ...survey.stale], wrapOptions(r, true)), {
        step: "config",
        timeoutMs: r.longTimeout,
      });
      if (res.exitCode !== 0) {
        throw commandFailure("config", "removing an interrupted install's build folders", res, plan.layout.endpointDir);
      }
      changes.push(`removed ${survey.stale.length} build folder(s) of an interrupted install`);
    }
    return {
      changed: changes.length > 0,
      skipped: changes.length === 0,
      message: changes.length > 0 ? changes.join("; ") : "up to date",
    };
  });
}

/** Files the installer keeps in the endpoint. */
export const STATE_FILE = "install-state.json";
export const MARKER_FILE = "install-complete";
export const LOCK_FILE = "install.lock";
export const PREAMBLE_FILE = "preamble.sh";
export const PYTHON_FILE = "python";
export const VENV_DIR = "env";
/** Prefix of the installer's build folders inside the temp folder. */
export const BUILD_PREFIX = "install-";

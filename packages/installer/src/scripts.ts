/**
 * The remote side of the installer: small POSIX `sh` and Python scripts passed as argv
 * (`sh -c SCRIPT sh ARG…`, `python -c SCRIPT ARG…`). User data only ever travels as
 * arguments, never inside the script text.
 */

/** Files the installer keeps in the endpoint. */
export const STATE_FILE = "install-state.json";
export const MARKER_FILE = "install-complete";
export const LOCK_FILE = "install.lock";
export const PREAMBLE_FILE = "preamble.sh";
export const PYTHON_FILE = "python";
export const VENV_DIR = "env";
/** Prefix of the installer's build folders inside the temp folder. */
export const BUILD_PREFIX = "install-";

/**
 * Wrapper of every command that may need Python: `$1` preamble file and `$2` preamble text
 * (either may be ""), `$3` umask, `$4` a scratch folder to create and point TMPDIR at (or
 * ""), then the argv to run. The scratch folder keeps what venv's ensurepip and pip unpack
 * out of the shared /tmp, where a killed or aborted command would leave it behind; it lives
 * in the temp folder as `install-*`, removed by the installer afterwards or, when the
 * installer itself was killed, by the next install. The preamble is sourced (or evaluated)
 * inside a function so that a `set --` in it cannot change the argv; the standard folders
 * are appended to PATH like interpreter.sh does.
 */
export const WRAP_SH = `sremote_pre=$1
sremote_text=$2
umask "$3" || exit 96
if [ -n "$4" ]; then
  mkdir -p -- "$4" || exit 96
  TMPDIR=$4
  export TMPDIR
fi
shift 4
for sremote_p in /usr/local/bin /usr/bin /bin; do
  case :\${PATH-}: in *:"$sremote_p":*) ;; *) PATH=\${PATH:+$PATH:}$sremote_p ;; esac
done
export PATH
sremote_source() { . "$1" >&2; }
sremote_eval() { eval "$1" >&2; }
sremote_rc=0
set +u
if [ -n "$sremote_pre" ] && [ -f "$sremote_pre" ]; then
  sremote_source "$sremote_pre"
  sremote_rc=$?
elif [ -n "$sremote_text" ]; then
  sremote_eval "$sremote_text"
  sremote_rc=$?
fi
if [ "$sremote_rc" -ne 0 ]; then
  printf 'sremote-install: the preamble failed (exit status %s)\\n' "$sremote_rc" >&2
  exit 97
fi
exec "$@"`;

/** Exit status of {@link WRAP_SH} when the preamble failed. */
export const PREAMBLE_FAILED = 97;

/**
 * Runs argv[2:] holding an exclusive lock on argv[1] (flock), inherited by the command: a
 * step of an install that was killed but still runs remotely finishes before the next
 * install's step starts.
 */
export const LOCK_PY = `import fcntl, os, sys
try:
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
except OSError as e:
    sys.stderr.write("sremote-install: cannot open the lock file %s: %s\\n" % (sys.argv[1], e))
    sys.exit(98)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    sys.stderr.write("sremote-install: waiting for an earlier install step in this endpoint to finish\\n")
    sys.stderr.flush()
    fcntl.flock(fd, fcntl.LOCK_EX)
os.set_inheritable(fd, True)
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as e:
    sys.stderr.write("sremote-install: cannot run %s: %s\\n" % (sys.argv[2], e))
    sys.exit(127)`;

/**
 * Creates and checks the folders, and reports what exists. Args: endpoint, tmp, work,
 * location folder ("" when none), endpoint mode (700/755), umask, state and marker names.
 * Prints `changed …`, `has NAME`, `stale PATH`, `owner yes|no` lines, and `blocked PATH` (the
 * nearest existing folder) before failing to create a folder.
 * Exit 10: a folder cannot be made; 11: the endpoint is a foreign non-empty folder.
 */
export const SURVEY_SH = `ep=$1 tmp=$2 work=$3 locdir=$4 mode=$5
umask "$6"
state=$7 marker=$8
fail() { printf 'sremote-install: %s\\n' "$*" >&2; exit 10; }
created=
mk() {
  [ -d "$1" ] && return 0
  if [ -e "$1" ] || [ -L "$1" ]; then fail "$1 exists and is not a folder"; fi
  if ! mkdir -p -- "$1"; then
    p=$1
    while [ ! -e "$p" ]; do
      case $p in */*) p=\${p%/*} ;; *) p= ;; esac
      [ -n "$p" ] || { p=/; break; }
    done
    echo "blocked $p"
    fail "cannot create the folder $1 in $p"
  fi
  if [ -n "$2" ]; then chmod "$2" -- "$1" || fail "cannot set the mode of $1"; fi
  echo "changed created $1"
  [ "$1" = "$ep" ] && created=1
  return 0
}
mk "$ep" "$mode"
if [ ! -w "$ep" ] || [ ! -x "$ep" ]; then
  fail "the endpoint folder $ep is not writable by $(id -un 2>/dev/null || echo this account)"
fi
if [ -z "$created" ] && [ ! -f "$ep/agent-manifest.json" ] && [ ! -f "$ep/$state" ] && [ ! -f "$ep/interpreter.sh" ]; then
  for f in "$ep"/* "$ep"/.[!.]* "$ep"/..?*; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    case \${f##*/} in
      .location | tmp | install.lock) ;;
      *)
        printf 'sremote-install: %s is not empty and is not an SRemote endpoint (it holds %s)\\n' "$ep" "\${f##*/}" >&2
        exit 11
        ;;
    esac
  done
fi
if [ -z "$(find "$ep" -prune -perm "$mode" -print)" ]; then
  chmod "$mode" -- "$ep" || fail "cannot set the mode of $ep"
  echo "changed mode $mode $ep"
fi
mk "$tmp" 700
if [ -z "$(find "$tmp" -prune -perm 700 -print)" ]; then
  chmod 700 -- "$tmp" || fail "cannot set the mode of $tmp"
  echo "changed mode 700 $tmp"
fi
mk "$work" 700
[ -z "$locdir" ] || mk "$locdir" 700
if [ -O "$ep" ]; then echo "owner yes"; else echo "owner no"; fi
for d in "$tmp"/install-*; do [ -d "$d" ] && echo "stale $d"; done
for n in "$state" "$marker" preamble.sh python agent-manifest.json interpreter.sh; do
  [ -f "$ep/$n" ] && echo "has $n"
done
[ -x "$ep/env/bin/python" ] && echo "has env/bin/python"
exit 0`;

/** Exit status of {@link SURVEY_SH} for a folder that cannot be made or used. */
export const SURVEY_FOLDER_FAILED = 10;
/** Exit status of {@link SURVEY_SH} for a non-empty folder that is not an endpoint. */
export const SURVEY_FOREIGN = 11;

/**
 * Facts about one Python, printed as `info {json}`. Valid Python 2 too, so that an old
 * interpreter is reported as too old rather than as broken.
 */
export const PYINFO_PY = `import sys, os, json, platform
def has(m):
    try:
        import importlib.util
        return importlib.util.find_spec(m) is not None
    except Exception:
        return False
def version(d):
    try:
        from importlib.metadata import version
        return version(d)
    except Exception:
        return None
print("info " + json.dumps({
    "executable": sys.executable,
    "version": "%d.%d.%d" % tuple(sys.version_info[:3]),
    "implementation": platform.python_implementation(),
    "venv": has("venv"),
    "ensurepip": has("ensurepip"),
    "pip": has("pip"),
    "setuptools": version("setuptools") if has("setuptools") else None,
    "wheel": has("wheel"),
    "inVenv": getattr(sys, "base_prefix", sys.prefix) != sys.prefix,
}))`;

/** Facts about the endpoint's venv: `venv {json}` with its distributions. */
export const VENVINFO_PY = `import sys, json, platform
from importlib import metadata
dists = {}
for d in metadata.distributions():
    try:
        name = d.metadata["Name"]
    except Exception:
        name = None
    if name:
        dists[name] = d.version
def has(m):
    import importlib.util
    return importlib.util.find_spec(m) is not None
print("venv " + json.dumps({
    "executable": sys.executable,
    "version": "%d.%d.%d" % tuple(sys.version_info[:3]),
    "pip": dists.get("pip"),
    "setuptools": dists.get("setuptools") if has("setuptools") else None,
    "wheel": has("wheel"),
    "distributions": dists,
}))`;

/**
 * Finds Python: args venv python ("" to skip), then candidates. For each candidate prints
 * `missing NAME`, or `candidate NAME PATH` followed by `info {json}` or `failed STATUS`.
 * Then `venv {json}` (or `venv-failed STATUS`) when the venv python is executable, and
 * `git PATH` when git is on PATH. Changes nothing.
 */
export const PROBE_SH = `venvpy=$1
pyinfo=$2
venvinfo=$3
shift 3
for c in "$@"; do
  p=$(command -v -- "$c" 2>/dev/null) || { echo "missing $c"; continue; }
  echo "candidate $c $p"
  "$p" -c "$pyinfo" </dev/null || echo "failed $?"
done
if [ -n "$venvpy" ] && [ -x "$venvpy" ]; then
  "$venvpy" -c "$venvinfo" </dev/null || echo "venv-failed $?"
fi
g=$(command -v git 2>/dev/null) && echo "git $g"
exit 0`;

/**
 * Extracts a tar archive (argv[1]) into a folder (argv[2]) with tarfile's "data" filter where
 * available (no absolute paths, no links out of the folder, no device files).
 */
export const EXTRACT_PY = `import os, sys, tarfile
src, dest = sys.argv[1], sys.argv[2]
with tarfile.open(src) as t:
    if hasattr(tarfile, "data_filter"):
        t.extractall(dest, filter="data")
    else:
        root = os.path.realpath(dest)
        for m in t.getmembers():
            target = os.path.realpath(os.path.join(dest, m.name))
            if not (target == root or target.startswith(root + os.sep)) or m.isdev():
                sys.stderr.write("sremote-install: refusing archive member %s\\n" % m.name)
                sys.exit(2)
            if m.issym() and os.path.isabs(m.linkname):
                sys.stderr.write("sremote-install: refusing absolute link %s\\n" % m.name)
                sys.exit(2)
        t.extractall(dest)`;

/**
 * Builds and installs one package. Args: kind (git|tar|file), build folder, builder
 * (direct|base), base python, venv python, source (URL / tar / file), commit (git), subdir,
 * then the pip install argv. Always removes the build folder. Exit 30: clone/checkout
 * failed; 31: subfolder missing; 32: not a Python project; 33: wheel build failed.
 */
export const BUILD_SH = `kind=$1 build=$2 builder=$3 basepy=$4 venvpy=$5 source=$6 commit=$7 subdir=$8 extract=$9
shift 9
trap 'rm -rf -- "$build"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
say() { printf 'sremote-install: %s\\n' "$*" >&2; }
is_project() { [ -f "$1/pyproject.toml" ] || [ -f "$1/setup.py" ] || [ -f "$1/setup.cfg" ]; }
mkdir -p -- "$build/tmp" || exit 1
# pip's and git's own temp files go into the build folder too, removed with it.
TMPDIR=$build/tmp
export TMPDIR
case $kind in
  git)
    git clone --quiet --no-checkout -- "$source" "$build/src" || { say "git clone of $source failed"; exit 30; }
    git -C "$build/src" -c advice.detachedHead=false checkout --quiet "$commit" || { say "git checkout of $commit failed"; exit 30; }
    src=$build/src
    ;;
  tar)
    "$venvpy" -c "$extract" "$source" "$build/src" || { say "cannot unpack the uploaded folder"; exit 1; }
    src=$build/src
    ;;
  file)
    src=$source
    ;;
esac
if [ "$kind" != file ]; then
  if [ -n "$subdir" ]; then
    [ -d "$src/$subdir" ] || { say "the subfolder $subdir does not exist in $source"; exit 31; }
    src=$src/$subdir
  elif ! is_project "$src" && is_project "$src/py"; then
    say "using the subfolder py/ (the repository root is not a Python project)"
    src=$src/py
  fi
  is_project "$src" || { say "$source\${subdir:+ (subfolder $subdir)} has no pyproject.toml, setup.py or setup.cfg"; exit 32; }
fi
case $src in *.whl) builder=direct ;; esac
if [ "$builder" = base ]; then
  say "building a wheel with $basepy (the venv has no wheel-building tools)"
  "$basepy" -m pip wheel --disable-pip-version-check --no-input --no-deps --no-index --no-build-isolation -w "$build/wheels" "$src" || exit 33
  for w in "$build"/wheels/*.whl; do src=$w; done
fi
log=$build/pip.log
{ "$@" "$src" 2>&1; echo $? >"$build/status"; } | tee "$log"
status=$(cat "$build/status" 2>/dev/null || echo 1)
if [ "$status" -eq 0 ] && grep -q "already installed with the same version" "$log"; then
  say "reinstalling: the version is unchanged but the content differs"
  "$@" --force-reinstall --no-deps "$src" 2>&1
  status=$?
fi
exit "$status"`;

/** Build-script exit statuses. */
export const BUILD_EXIT = { clone: 30, subdir: 31, notProject: 32, wheel: 33 } as const;

/**
 * Shared endpoints: byte-compiles the agent with the Python calls run (so that no call ever
 * creates a `__pycache__` folder in the endpoint under its caller's umask, e.g. 002: a folder
 * others could plant code in), makes everything readable and nothing writable by group or
 * others, then lists what still is (files this account cannot chmod). Args: the endpoint,
 * the Python. Prints `compiled` when it wrote byte code, `changed` when it changed modes,
 * `bad PATH` for each remaining problem, `compile-failed` when Python could not compile.
 */
export const SHARE_SH = `ep=$1 py=$2
out=$("$py" -m compileall -l -- "$ep/sremote_agent" 2>&1) || { echo compile-failed; printf '%s\\n' "$out" >&2; }
case $out in *"Compiling "*) echo compiled ;; esac
needs=$(find "$ep" ! -type l \\( -perm -020 -o -perm -002 -o ! -perm -044 -o \\( -type d ! -perm -055 \\) \\) -print | head -n 1)
if [ -n "$needs" ]; then
  find "$ep" ! -type l -exec chmod go-w,go+rX {} + 2>/dev/null
  echo changed
fi
find "$ep" ! -type l \\( -perm -020 -o -perm -002 \\) -print | head -n 20 | sed 's/^/bad /'
exit 0`;

/**
 * Doctor's survey: args endpoint, tmp, work, venv python ("" if none). Prints `has`,
 * `mode PATH OCTAL`-style facts, `gw PATH` for group/world-writable files, `owner yes|no`.
 */
export const DOCTOR_SH = `ep=$1 tmp=$2 work=$3
[ -d "$ep" ] && echo "has endpoint"
[ -d "$ep" ] || exit 0
if [ -O "$ep" ]; then echo "owner yes"; else echo "owner no"; fi
[ -w "$ep" ] && echo "writable endpoint"
for n in install-state.json install-complete agent-manifest.json interpreter.sh preamble.sh python; do
  [ -f "$ep/$n" ] && echo "has $n"
done
[ -x "$ep/env/bin/python" ] && echo "has env/bin/python"
[ -d "$tmp" ] && echo "has tmp"
[ -d "$tmp" ] && [ -z "$(find "$tmp" -prune -perm 700 -print)" ] && echo "tmp-mode-wrong"
[ -d "$tmp" ] && [ ! -O "$tmp" ] && echo "tmp-not-owned"
[ -d "$work" ] && echo "has work"
[ -d "$ep" ] && [ -z "$(find "$ep" -prune -perm 700 -print)" ] && echo "endpoint-not-private"
find "$ep" ! -type l \\( -perm -020 -o -perm -002 \\) -print 2>/dev/null | head -n 20 | sed 's/^/gw /'
exit 0`;

/**
 * Removes an endpoint. Args: endpoint, keep ("1" keeps the venv and install state).
 * Exit 11 when the folder is not an SRemote endpoint (nothing removed).
 */
export const UNINSTALL_SH = `ep=$1 keep=$2
[ -d "$ep" ] || { echo absent; exit 0; }
if [ ! -f "$ep/agent-manifest.json" ] && [ ! -f "$ep/install-state.json" ] && [ ! -f "$ep/install-complete" ]; then
  printf 'sremote-install: %s is not an SRemote endpoint (no agent-manifest.json or install-state.json); nothing removed\\n' "$ep" >&2
  exit 11
fi
if [ "$keep" = 1 ]; then
  for f in "$ep"/* "$ep"/.[!.]* "$ep"/..?*; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    case \${f##*/} in
      env | install-state.json | python | preamble.sh) echo "kept $f" ;;
      *) rm -rf -- "$f" || exit 1; echo "removed $f" ;;
    esac
  done
else
  rm -rf -- "$ep" || exit 1
  echo "removed $ep"
fi
exit 0`;

/**
 * Attaching to someone else's endpoint: args endpoint, tmp, work, location folder. Creates
 * the private folders (0700) and reports `changed …`, `readable no`, `writable yes`.
 */
export const ATTACH_SH = `ep=$1 tmp=$2 work=$3 locdir=$4
umask 077
fail() { printf 'sremote-install: %s\\n' "$*" >&2; exit 10; }
mk() {
  [ -d "$1" ] && return 0
  mkdir -p -- "$1" || fail "cannot create the folder $1"
  chmod 700 -- "$1" || fail "cannot set the mode of $1"
  echo "changed created $1"
}
[ -d "$ep" ] || { printf 'sremote-install: %s does not exist or cannot be reached by this account\\n' "$ep" >&2; exit 12; }
{ [ -r "$ep/interpreter.sh" ] && [ -x "$ep" ]; } || echo "readable no"
[ -w "$ep" ] && echo "writable yes"
mk "$locdir"
mk "$tmp"
if [ -z "$(find "$tmp" -prune -perm 700 -print)" ]; then chmod 700 -- "$tmp" && echo "changed mode 700 $tmp"; fi
mk "$work"
exit 0`;

/** Exit status of {@link ATTACH_SH} when the endpoint folder is missing. */
export const ATTACH_MISSING = 12;

/**
 * Free space of the file system holding a path (or its nearest existing parent): prints
 * `df -Pk`'s output. Arg: the path.
 */
export const FREE_SPACE_SH = `p=$1
while [ ! -e "$p" ]; do
  case $p in */*) p=\${p%/*} ;; *) p= ;; esac
  [ -n "$p" ] || { p=/; break; }
done
exec df -Pk -- "$p"`;

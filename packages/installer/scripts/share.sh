# shellcheck shell=sh
# Shared endpoints: byte-compiles the agent with the Python calls run (so that no call ever
# creates a `__pycache__` folder in the endpoint under its caller's umask, e.g. 002: a folder
# others could plant code in), makes everything readable and nothing writable by group or
# others, then lists what still is (files this account cannot chmod).
# Args: the endpoint, the Python. Prints `compiled` when it wrote byte code, `changed` when it
# changed modes, `bad PATH` for each remaining problem, `compile-failed` when Python could
# not compile.

ep=$1 py=$2
out=$("$py" -m compileall -l -- "$ep/sremote_agent" 2>&1) || { echo compile-failed; printf '%s\n' "$out" >&2; }
case $out in *"Compiling "*) echo compiled ;; esac
needs=$(find "$ep" ! -type l \( -perm -020 -o -perm -002 -o ! -perm -044 -o \( -type d ! -perm -055 \) \) -print | head -n 1)
if [ -n "$needs" ]; then
  find "$ep" ! -type l -exec chmod go-w,go+rX {} + 2>/dev/null
  echo changed
fi
find "$ep" ! -type l \( -perm -020 -o -perm -002 \) -print | head -n 20 | sed 's/^/bad /'
exit 0

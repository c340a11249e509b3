# shellcheck shell=sh
# Creates and checks the install's folders, and reports what exists.
# Args: endpoint, tmp, work, location folder ("" when none), endpoint mode (700/755), umask,
# state and marker file names.
# Prints `changed …`, `has NAME`, `stale PATH`, `owner yes|no` lines, and `blocked PATH` (the
# nearest existing folder) before failing to create a folder.
# Exit 10: a folder cannot be made or used; 11: the endpoint is a foreign non-empty folder.

ep=$1 tmp=$2 work=$3 locdir=$4 mode=$5
umask "$6"
state=$7 marker=$8
fail() { printf 'sremote-install: %s\n' "$*" >&2; exit 10; }
created=
mk() {
  [ -d "$1" ] && return 0
  if [ -e "$1" ] || [ -L "$1" ]; then fail "$1 exists and is not a folder"; fi
  if ! mkdir -p -- "$1"; then
    p=$1
    while [ ! -e "$p" ]; do
      case $p in */*) p=${p%/*} ;; *) p= ;; esac
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
    case ${f##*/} in
      .location | tmp | install.lock) ;;
      *)
        printf 'sremote-install: %s is not empty and is not an SRemote endpoint (it holds %s)\n' "$ep" "${f##*/}" >&2
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
exit 0

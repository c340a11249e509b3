# shellcheck shell=sh
# Attaching to someone else's endpoint. Args: endpoint, tmp, work, location folder.
# Creates the private folders (0700) and reports `changed …`, `readable no`, `writable yes`.
# Exit 10: a folder cannot be made; 12: the endpoint is missing or cannot be reached.

ep=$1 tmp=$2 work=$3 locdir=$4
umask 077
fail() { printf 'sremote-install: %s\n' "$*" >&2; exit 10; }
mk() {
  [ -d "$1" ] && return 0
  mkdir -p -- "$1" || fail "cannot create the folder $1"
  chmod 700 -- "$1" || fail "cannot set the mode of $1"
  echo "changed created $1"
}
[ -d "$ep" ] || { printf 'sremote-install: %s does not exist or cannot be reached by this account\n' "$ep" >&2; exit 12; }
{ [ -r "$ep/interpreter.sh" ] && [ -x "$ep" ]; } || echo "readable no"
[ -w "$ep" ] && echo "writable yes"
mk "$locdir"
mk "$tmp"
if [ -z "$(find "$tmp" -prune -perm 700 -print)" ]; then chmod 700 -- "$tmp" && echo "changed mode 700 $tmp"; fi
mk "$work"
exit 0

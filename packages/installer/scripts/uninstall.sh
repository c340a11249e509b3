# shellcheck shell=sh
# Removes an endpoint. Args: endpoint, keep ("1" keeps the venv and install state).
# Prints `removed PATH` / `kept PATH`, or `absent`.
# Exit 11 when the folder is not an SRemote endpoint (nothing removed).

ep=$1 keep=$2
[ -d "$ep" ] || { echo absent; exit 0; }
if [ ! -f "$ep/agent-manifest.json" ] && [ ! -f "$ep/install-state.json" ] && [ ! -f "$ep/install-complete" ]; then
  printf 'sremote-install: %s is not an SRemote endpoint (no agent-manifest.json or install-state.json); nothing removed\n' "$ep" >&2
  exit 11
fi
if [ "$keep" = 1 ]; then
  for f in "$ep"/* "$ep"/.[!.]* "$ep"/..?*; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    case ${f##*/} in
      env | install-state.json | python | preamble.sh) echo "kept $f" ;;
      *) rm -rf -- "$f" || exit 1; echo "removed $f" ;;
    esac
  done
else
  rm -rf -- "$ep" || exit 1
  echo "removed $ep"
fi
exit 0

# shellcheck shell=sh
# What an endpoint holds, for doctor and uninstall. Args: endpoint, tmp, work.
# Prints `has NAME` facts, `owner yes|no`, `writable endpoint`, `tmp-mode-wrong`,
# `tmp-not-owned`, `endpoint-not-private`, and `gw PATH` for group/world-writable files.
# Changes nothing.

ep=$1 tmp=$2 work=$3
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
find "$ep" ! -type l \( -perm -020 -o -perm -002 \) -print 2>/dev/null | head -n 20 | sed 's/^/gw /'
exit 0

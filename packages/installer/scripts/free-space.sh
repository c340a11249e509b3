# shellcheck shell=sh
# Free space of the file system holding a path (or its nearest existing parent): prints
# `df -Pk`'s output. Arg: the path.

p=$1
while [ ! -e "$p" ]; do
  case $p in */*) p=${p%/*} ;; *) p= ;; esac
  [ -n "$p" ] || { p=/; break; }
done
exec df -Pk -- "$p"

# shellcheck shell=sh
# Finds Python. Args: the venv's python ("" to skip), pyinfo.py's and venvinfo.py's text,
# then the candidate interpreters. For each candidate prints `missing NAME`, or
# `candidate NAME PATH` followed by `info {json}` or `failed STATUS`. Then `venv {json}` (or
# `venv-failed STATUS`) when the venv python is executable, and `git PATH` when git is on
# PATH. Changes nothing.

venvpy=$1
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
exit 0

# shellcheck shell=sh
# Builds and installs one package.
# Args: kind (git|tar|file), build folder, builder (direct|base), base python, venv python,
# source (URL / tar / file), commit (git), subfolder, extract.py's text, then the pip
# install argv. Always removes the build folder.
# Exit 30: clone/checkout failed; 31: subfolder missing; 32: not a Python project;
# 33: wheel build failed; otherwise pip's exit status.

kind=$1 build=$2 builder=$3 basepy=$4 venvpy=$5 source=$6 commit=$7 subdir=$8 extract=$9
shift 9
trap 'rm -rf -- "$build"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
say() { printf 'sremote-install: %s\n' "$*" >&2; }
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
  is_project "$src" || { say "$source${subdir:+ (subfolder $subdir)} has no pyproject.toml, setup.py or setup.cfg"; exit 32; }
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
exit "$status"

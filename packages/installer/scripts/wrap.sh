# shellcheck shell=sh
# shellcheck disable=SC1090  # the preamble file is the user's: nothing to follow
# Wrapper of every installer command that may need Python.
# Args: $1 preamble file and $2 preamble text (either may be ""), $3 umask, $4 a scratch
# folder to create and point TMPDIR at (or ""), then the argv to run.
# The scratch folder keeps what venv's ensurepip and pip unpack out of the shared /tmp, where
# a killed or aborted command would leave it behind; it lives in the temp folder as
# `install-*`, removed by the installer afterwards or, when the installer itself was killed,
# by the next install. The preamble is sourced (or evaluated) inside a function so that a
# `set --` in it cannot change the argv; the standard folders are appended to PATH like
# interpreter.sh does.
# Exit 96: umask or the scratch folder failed; 97: the preamble failed.

sremote_pre=$1
sremote_text=$2
umask "$3" || exit 96
if [ -n "$4" ]; then
  mkdir -p -- "$4" || exit 96
  TMPDIR=$4
  export TMPDIR
fi
shift 4
for sremote_p in /usr/local/bin /usr/bin /bin; do
  case :${PATH-}: in *:"$sremote_p":*) ;; *) PATH=${PATH:+$PATH:}$sremote_p ;; esac
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
  printf 'sremote-install: the preamble failed (exit status %s)\n' "$sremote_rc" >&2
  exit 97
fi
exec "$@"

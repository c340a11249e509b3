#!/bin/sh
# SRemote agent launcher (POSIX sh). See docs/protocol.md section 3.
#
#   file carrier:    sh interpreter.sh <req> <resp> [<sremote_dir> [<tmp> [<pwd>]]]
#   session carrier: sh interpreter.sh --serve [<sremote_dir> [<tmp> [<pwd>]]] [--workers N] [--max-frame BYTES] [--grace-ms MS]
#   information:     sh interpreter.sh --info [<sremote_dir>]
#
# Defaults: sremote_dir = this script's folder, tmp = <sremote_dir>/tmp, pwd = $HOME.
# Exit status: what the agent returns (file carrier: 0 a response was written, 1 the agent
# failed, 3 unreadable or undecodable request, 5 the response could not be written: the
# temp folder is full or read-only), 1 a folder could not be created, 2 bad usage,
# 4 no suitable Python.

set -u

sremote_usage() {
  printf '%s\n' \
    "usage: sh interpreter.sh <req> <resp> [<sremote_dir> [<tmp> [<pwd>]]]" \
    "       sh interpreter.sh --serve [<sremote_dir> [<tmp> [<pwd>]]] [--workers N] [--max-frame BYTES] [--grace-ms MS]" \
    "       sh interpreter.sh --info [<sremote_dir>]" >&2
  exit 2
}

# sremote_r = absolute form of a path, relative to the folder the script was started in
# (no command substitution: each one costs a fork).
sremote_abs() {
  case $1 in
    /*) sremote_r=$1 ;;
    *) sremote_r=$sremote_start_dir/$1 ;;
  esac
}

sremote_start_dir=${PWD-}
[ -n "$sremote_start_dir" ] || sremote_start_dir=$(pwd)
sremote_r=

sremote_mode='file'
sremote_req=
sremote_resp=
sremote_dir=
sremote_tmp=
sremote_pwd=
sremote_workers=
sremote_max_frame=
sremote_grace_ms=

case ${1-} in
  --serve)
    sremote_mode=serve
    shift
    # Up to three positional folders, then options for the agent (checked by it).
    for sremote_slot in dir tmp pwd; do
      case ${1-} in
        --*) break ;;
      esac
      [ $# -gt 0 ] || break
      eval "sremote_$sremote_slot=\$1"
      shift
    done
    # Options are kept in variables: a preamble may reset the positional parameters.
    while [ $# -gt 0 ]; do
      case $1 in
        --workers) [ $# -ge 2 ] || sremote_usage; sremote_workers=$2; shift 2 ;;
        --max-frame) [ $# -ge 2 ] || sremote_usage; sremote_max_frame=$2; shift 2 ;;
        --grace-ms) [ $# -ge 2 ] || sremote_usage; sremote_grace_ms=$2; shift 2 ;;
        *) sremote_usage ;;
      esac
    done
    ;;
  --info)
    sremote_mode=info
    shift
    [ $# -le 1 ] || sremote_usage
    sremote_dir=${1-}
    [ $# -eq 0 ] || shift
    ;;
  -h | --help)
    sremote_usage
    ;;
  -*)
    sremote_usage
    ;;
  *)
    if [ $# -lt 2 ] || [ $# -gt 5 ] || [ -z "$1" ] || [ -z "$2" ]; then
      sremote_usage
    fi
    sremote_abs "$1"
    sremote_req=$sremote_r
    sremote_abs "$2"
    sremote_resp=$sremote_r
    sremote_dir=${3-}
    sremote_tmp=${4-}
    sremote_pwd=${5-}
    shift $#
    ;;
esac

# Defaults and absolute paths (the agent runs in <pwd>).
if [ -z "$sremote_dir" ]; then
  case $0 in
    */*) sremote_dir=${0%/*} ;;
    *) sremote_dir=. ;;
  esac
  sremote_dir=$(CDPATH='' cd -- "$sremote_dir" && pwd -P) || {
    printf 'sremote: cannot find the folder of %s\n' "$0" >&2
    exit 1
  }
else
  sremote_abs "$sremote_dir"
  sremote_dir=$sremote_r
fi
if [ -z "$sremote_tmp" ]; then
  sremote_tmp=$sremote_dir/tmp
else
  sremote_abs "$sremote_tmp"
  sremote_tmp=$sremote_r
fi
if [ -z "$sremote_pwd" ]; then
  sremote_pwd=${HOME:-$sremote_dir}
fi
sremote_abs "$sremote_pwd"
sremote_pwd=$sremote_r

# A sane PATH: the standard folders are appended when missing.
for sremote_p in /usr/local/bin /usr/bin /bin; do
  case :${PATH-}: in
    *:"$sremote_p":*) ;;
    *) PATH=${PATH:+$PATH:}$sremote_p ;;
  esac
done
export PATH

if [ "$sremote_mode" != info ]; then
  if [ ! -d "$sremote_tmp" ]; then
    if ! { mkdir -p "$sremote_tmp" && chmod 700 "$sremote_tmp"; }; then
      printf 'sremote: cannot create the temp folder %s\n' "$sremote_tmp" >&2
      exit 1
    fi
  fi
  if [ ! -d "$sremote_pwd" ]; then
    mkdir -p "$sremote_pwd" || {
      printf 'sremote: cannot create the working folder %s\n' "$sremote_pwd" >&2
      exit 1
    }
  fi
fi

# The installer's preamble (module load, conda activate...), then the venv. Their output
# goes to stderr: stdout carries frames (session) or JSON (--info).
set +u
if [ -f "$sremote_dir/preamble.sh" ]; then
  # shellcheck source=/dev/null
  . "$sremote_dir/preamble.sh" >&2
fi
SREMOTE_BACKUP_ENV=
if [ -f "$sremote_dir/env/bin/activate" ]; then
  VIRTUAL_ENV_DISABLE_PROMPT=1
  export VIRTUAL_ENV_DISABLE_PROMPT
  # shellcheck source=/dev/null
  . "$sremote_dir/env/bin/activate" >&2
  SREMOTE_BACKUP_ENV=$sremote_dir/env
fi
set -u

SREMOTE_DIR=$sremote_dir
SREMOTE_TMP=$sremote_tmp
SREMOTE_PWD=$sremote_pwd
export SREMOTE_DIR SREMOTE_TMP SREMOTE_PWD SREMOTE_BACKUP_ENV

# Python: $SREMOTE_PYTHON, else the venv's, else the installer's choice, else python3/python.
sremote_python=
if [ -n "${SREMOTE_PYTHON-}" ]; then
  sremote_python=$SREMOTE_PYTHON
  sremote_from="SREMOTE_PYTHON"
elif [ -x "$sremote_dir/env/bin/python" ]; then
  sremote_python=$sremote_dir/env/bin/python
  sremote_from="the venv $sremote_dir/env"
elif [ -f "$sremote_dir/python" ]; then
  IFS= read -r sremote_python <"$sremote_dir/python" || [ -n "$sremote_python" ]
  sremote_from="$sremote_dir/python"
else
  for sremote_candidate in python3 python; do
    if command -v "$sremote_candidate" >/dev/null 2>&1; then
      sremote_python=$sremote_candidate
      break
    fi
  done
  sremote_from="PATH"
  if [ -z "$sremote_python" ]; then
    printf 'sremote: no suitable Python: neither python3 nor python is on PATH (%s); install Python 3.8+ or set SREMOTE_PYTHON\n' "$PATH" >&2
    exit 4
  fi
fi
case $sremote_python in
  */*) [ -f "$sremote_python" ] && [ -x "$sremote_python" ] ;;
  *) command -v "$sremote_python" >/dev/null 2>&1 ;;
esac || {
  printf 'sremote: no suitable Python: %s (from %s) is not an executable\n' "$sremote_python" "$sremote_from" >&2
  exit 4
}

sremote_agent=$sremote_dir/sremote_agent/__main__.py
if [ ! -f "$sremote_agent" ]; then
  printf 'sremote: the agent is missing: %s (reinstall the endpoint)\n' "$sremote_agent" >&2
  exit 1
fi

if [ "$sremote_mode" = info ]; then
  cd "$sremote_pwd" 2>/dev/null || cd / || exit 1
else
  cd "$sremote_pwd" || {
    printf 'sremote: cannot enter the working folder %s\n' "$sremote_pwd" >&2
    exit 1
  }
fi

# Big values (bulk bytes, arrays) on transparent huge pages where the kernel gives them on
# request (THP "madvise", the common default): with 4 KiB pages every fresh 64 MiB buffer
# cost the agent ~200 ms of page faults on a VM (docs/performance.md, "Bulk data"). glibc
# 2.35+ reads this tunable; other C libraries and older glibc ignore it. A caller's own
# setting of it wins; the agent gives called code the caller's GLIBC_TUNABLES back (__main__.py).
case ":${GLIBC_TUNABLES-}:" in
  *:glibc.malloc.hugetlb=*) ;;
  *)
    if [ "${GLIBC_TUNABLES+set}" = set ]; then
      SREMOTE_CALLER_GLIBC_TUNABLES=$GLIBC_TUNABLES
      export SREMOTE_CALLER_GLIBC_TUNABLES
    fi
    GLIBC_TUNABLES=${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1
    SREMOTE_GLIBC_TUNED=1
    export GLIBC_TUNABLES SREMOTE_GLIBC_TUNED
    ;;
esac

# -E: the agent applies each call's environment itself.
case $sremote_mode in
  file) exec "$sremote_python" -E "$sremote_agent" --file "$sremote_req" "$sremote_resp" ;;
  info) exec "$sremote_python" -E "$sremote_agent" --info ;;
esac
set -- --serve
if [ -n "$sremote_workers" ]; then
  set -- "$@" --workers "$sremote_workers"
fi
if [ -n "$sremote_max_frame" ]; then
  set -- "$@" --max-frame "$sremote_max_frame"
fi
if [ -n "$sremote_grace_ms" ]; then
  set -- "$@" --grace-ms "$sremote_grace_ms"
fi
exec "$sremote_python" -E "$sremote_agent" "$@"

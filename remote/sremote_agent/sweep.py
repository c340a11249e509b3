"""Removing the temp files of clients that are gone (docs/reliability.md, "Stale temp files").

A file-carrier call leaves files in the temp folder only for moments: the request from its
upload until the agent has read it (the agent removes it), a `.part` while a response file
is written, a response file (a reply too big for the command's output) until the client has
read it, and a connector's partial upload while it is written. Files that stay longer than
that belong to a client that died or lost its connection in one of those moments. Every
file the carrier creates is named after a random 32-hex-digit call id, so the sweep touches
only names of that form, only regular files of this user, and only those not modified for
`max_age` seconds: the age bound is the ownership test (a live client's files are younger
than any sensible bound; see the doc for why no pid marker is needed)."""

import os
import re
import stat
import time

DEFAULT_MAX_AGE_SECONDS = 3600.0

# <id>.req / <id>.resp, their `.part`, and the partial uploads of the local connector
# (`.<id>.req.<hex>.sremote-tmp`) and of SFTP (`.<id>.req.sremote-<hex>.tmp`).
_NAME = re.compile(r"^\.?[0-9a-f]{32}\.(?:req|resp)(?:\.part|\.[0-9a-f]+\.sremote-tmp|\.sremote-[0-9a-f]+\.tmp)?$")


def max_age(requested):
    """The age bound: $SREMOTE_SWEEP_AGE_S, else `requested` when it is a number, else the
    default."""
    text = os.environ.get("SREMOTE_SWEEP_AGE_S")
    if text:
        try:
            value = float(text)
            if value >= 0:
                return value
        except ValueError:
            pass
    if isinstance(requested, (int, float)) and not isinstance(requested, bool) and requested >= 0:
        return float(requested)
    return DEFAULT_MAX_AGE_SECONDS


def sweep(folder, age, keep=(), log=None):
    """Removes stale carrier files from `folder` (not recursive); `keep`: paths never removed
    (this call's own). Returns how many were removed; never raises."""
    removed = 0
    try:
        uid = os.getuid()
        now = time.time()
        keep = set(os.path.basename(p) for p in keep)
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                if name in keep or not _NAME.match(name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                    if not stat.S_ISREG(st.st_mode) or st.st_uid != uid or now - st.st_mtime < age:
                        continue
                    os.unlink(entry.path)
                    removed += 1
                except OSError:
                    continue
    except OSError:
        pass
    if removed and log is not None:
        log("removed %d stale temp file(s) of clients that are gone from %s" % (removed, folder))
    return removed

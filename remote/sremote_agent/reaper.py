"""Ending what calls started, when the agent gives up on them (its client is gone, or a
file-carrier call ran past its deadline): every descendant process of the agent, with the
process group it leads when it started one of its own (`start_new_session=True`, `setsid`),
and, when the agent leads its own process group (as under sshd), the rest of that group
(children that daemonised away from the agent but kept its group).

The process tree is read from /proc (Linux), else from `ps`. SIGTERM first, then SIGKILL
for what is still there after a short wait."""

import os
import time

_TERM_WAIT_SECONDS = 0.3


def _proc_table():
    """[(pid, ppid, pgid, zombie)] of every process, or None when it cannot be read."""
    table = []
    try:
        names = os.listdir("/proc")
    except OSError:
        names = None
    if names is not None:
        for name in names:
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % name, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
            fields = data[data.rfind(b")") + 2 :].split()
            try:
                table.append((int(name), int(fields[1]), int(fields[2]), fields[0] == b"Z"))
            except (IndexError, ValueError):
                continue
        if table:
            return table
    try:
        import subprocess

        out = subprocess.run(
            ["ps", "-A", "-o", "pid=,ppid=,pgid=,stat="],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            timeout=5,
        ).stdout
    except Exception:
        return None
    for line in out.decode("ascii", "replace").splitlines():
        parts = line.split()
        try:
            table.append((int(parts[0]), int(parts[1]), int(parts[2]), parts[3].startswith("Z")))
        except (IndexError, ValueError):
            continue
    return table


def _targets(me, my_group, lead_group):
    """(pids, groups) to signal: the agent's descendants (and the groups they lead), plus
    the members of the agent's own group when it leads it."""
    table = _proc_table()
    if table is None:
        return [], []
    children = {}
    for pid, ppid, pgid, zombie in table:
        children.setdefault(ppid, []).append((pid, pgid, zombie))
    pids, groups = [], set()
    todo = [me]
    seen = set(todo)
    while todo:
        parent = todo.pop()
        for pid, pgid, zombie in children.get(parent, ()):
            if pid in seen:
                continue
            seen.add(pid)
            todo.append(pid)
            if not zombie:
                pids.append(pid)
                if pgid == pid and pgid != my_group:
                    groups.add(pgid)
    if lead_group:
        for pid, _ppid, pgid, zombie in table:
            if pgid == my_group and pid != me and pid not in seen and not zombie:
                pids.append(pid)
    return pids, sorted(groups)


def _signal_all(pids, groups, sig):
    for pgid in groups:
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def end_descendants(log=None):
    """Ends every process the agent's calls started (see the module's docstring). Returns
    how many processes were signalled."""
    me = os.getpid()
    try:
        my_group = os.getpgrp()
    except OSError:
        my_group = -1
    lead_group = my_group == me
    pids, groups = _targets(me, my_group, lead_group)
    if not pids and not groups:
        return 0
    if log is not None:
        log("ending %d process(es) started by calls" % len(pids))
    import signal  # here: its enums cost ~4 ms of every agent's start-up
    _signal_all(pids, groups, signal.SIGTERM)
    deadline = time.monotonic() + _TERM_WAIT_SECONDS
    left = pids
    for _ in range(100):  # bounded: until the deadline
        left, left_groups = _targets(me, my_group, lead_group)
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    else:
        left_groups = groups
    if left or left_groups:
        _signal_all(left, sorted(set(groups) | set(left_groups)), signal.SIGKILL)
    return len(pids)

"""Raw file-descriptor helpers shared by the frame I/O (frames.py), the per-call capture
(capture.py) and the file carrier: complete writes, and a non-blocking "is input waiting?"
check. Kept apart so that none of those modules imports another for them."""

import os
import select


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def readiness_check(fds):
    """A function returning True when any of `fds` has input waiting (or has hung up),
    without blocking. It runs around every call: one epoll_wait on a set registered once
    costs less than half a select() over a list of descriptors. select() where epoll is
    missing or refuses the descriptor (a regular file)."""
    epoll = getattr(select, "epoll", None)
    if epoll is not None:
        try:
            poller = epoll()
            try:
                for fd in fds:
                    poller.register(fd, select.EPOLLIN)
            except OSError:
                poller.close()
                raise
            poll = poller.poll

            def ready():
                try:
                    return bool(poll(0))
                except (OSError, ValueError):
                    return True

            return ready
        except OSError:
            pass
    fds = list(fds)

    def ready_select():
        try:
            return bool(select.select(fds, [], [], 0)[0])
        except (OSError, ValueError):
            return True

    return ready_select


def watch_peer(fd, on_gone):
    """Calls `on_gone()` from a daemon thread when the reader of `fd` (a pipe's write end, or
    a socket) has gone away: poll reports POLLERR/POLLHUP then, without anything being
    written. For a file carrier, whose client reads the agent's stdout, this is the client
    (or its sshd) dying mid-call. Nothing is watched when `fd` is a file, a terminal or
    /dev/null (a launcher may point stdout there). Returns True when a watch started."""
    import stat
    import threading

    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    poll = getattr(select, "poll", None)
    if poll is None or not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return False
    poller = poll()
    poller.register(fd, select.POLLERR | select.POLLHUP)

    def run():
        for _ in range(1000):  # bounded: poll returns only on an event or EINTR
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            except (OSError, ValueError):
                return
            if any(ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _fd, ev in events):
                if not any(ev & select.POLLNVAL for _fd, ev in events):
                    on_gone()
                return

    threading.Thread(target=run, name="sremote-peer-watch", daemon=True).start()
    return True

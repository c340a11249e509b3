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

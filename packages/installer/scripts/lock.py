# Runs argv[2:] holding an exclusive lock on argv[1] (flock), inherited by the command: a
# step of an install that was killed but still runs remotely finishes before the next
# install's step starts.
# Exit 98: the lock file cannot be opened; 127: the command cannot be run.

import fcntl, os, sys
try:
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
except OSError as e:
    sys.stderr.write("sremote-install: cannot open the lock file %s: %s\n" % (sys.argv[1], e))
    sys.exit(98)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    sys.stderr.write("sremote-install: waiting for an earlier install step in this endpoint to finish\n")
    sys.stderr.flush()
    fcntl.flock(fd, fcntl.LOCK_EX)
os.set_inheritable(fd, True)
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as e:
    sys.stderr.write("sremote-install: cannot run %s: %s\n" % (sys.argv[2], e))
    sys.exit(127)

# Extracts a tar archive (argv[1]) into a folder (argv[2]) with tarfile's "data" filter
# where available (no absolute paths, no links out of the folder, no device files).
# Exit 2: an archive member that would escape the folder.

import os, sys, tarfile
src, dest = sys.argv[1], sys.argv[2]
with tarfile.open(src) as t:
    if hasattr(tarfile, "data_filter"):
        t.extractall(dest, filter="data")
    else:
        root = os.path.realpath(dest)
        for m in t.getmembers():
            target = os.path.realpath(os.path.join(dest, m.name))
            if not (target == root or target.startswith(root + os.sep)) or m.isdev():
                sys.stderr.write("sremote-install: refusing archive member %s\n" % m.name)
                sys.exit(2)
            if m.issym() and os.path.isabs(m.linkname):
                sys.stderr.write("sremote-install: refusing absolute link %s\n" % m.name)
                sys.exit(2)
        t.extractall(dest)

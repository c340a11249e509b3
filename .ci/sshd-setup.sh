#!/usr/bin/env bash
# Makes this machine able to run the private sshd of @sremote/testkit/sshd (connector-ssh
# and client integration tests): installs Debian's openssh-server when /usr/sbin/sshd is
# missing and creates sshd's privilege-separation folder. Installing the package does not
# start a system sshd here (no systemd), and the fixture never uses port 22.
set -euo pipefail

if [ ! -x /usr/sbin/sshd ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends openssh-server >/dev/null 2>&1 || {
    apt-get update >/dev/null
    apt-get install -y --no-install-recommends openssh-server >/dev/null
  }
fi
mkdir -p /run/sshd
/usr/sbin/sshd -V 2>&1 | head -1

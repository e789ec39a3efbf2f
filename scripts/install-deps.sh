#!/usr/bin/env bash
# Everything composer and its tests need on Debian 12, as root. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    busybox-static nftables iptables iproute2 debootstrap procps psmisc util-linux \
    ca-certificates curl docker-registry skopeo tini >/dev/null
# docker.io (dockerd 20.10, containerd): tests/integration/network/netns/test_docker.py starts
# a private dockerd beside composer's networks. Its package would start the daemons at once
# (with the host's default data root, docker0 and a FORWARD DROP): a policy-rc.d that refuses
# service starts is put in place for the install, unless the host already has one, and the
# units it enables are disabled again (they are for the tests, not for every boot).
if ! command -v dockerd >/dev/null || ! command -v containerd >/dev/null; then
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get install -y -qq --no-install-recommends docker.io >/dev/null
    if [ -d /run/systemd/system ]; then
        systemctl disable -q docker.service docker.socket containerd.service 2>/dev/null || true
    fi
fi
python3 -m pip install -q -e '.[test]'

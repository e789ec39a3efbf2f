#!/usr/bin/env bash
# Everything composer and its tests need on Debian 12, as root. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    busybox-static nftables iptables iproute2 debootstrap procps psmisc util-linux \
    ca-certificates curl docker-registry skopeo tini >/dev/null
python3 -m pip install -q -e '.[test]'

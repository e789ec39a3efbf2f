#!/usr/bin/env bash
# Everything composer and its tests need on Debian 12 (or a Debian-like host), as root.
# Idempotent. Python packages go into a virtual environment of composer's own (PEP 668:
# Debian's python3 is "externally managed", so never into the system interpreter):
#   $COMPOSER_VENV (default /opt/composer)   the venv, with composer installed editable from here
#   /usr/local/bin/composer, composerd        links into it, so both are on every root PATH
#   /usr/share/bash-completion/completions/composer   bash completion (services, verbs, flags)
#   /usr/share/zsh/vendor-completions/_composer        the same for zsh (when zsh is installed)
#   COMPOSER_TEST_PEERS=1                      also what CI's native tiers need: the peer engines
#                                              the tests run beside (docker.io), gcc + libc6-dev
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${COMPOSER_VENV:-/opt/composer}
BIN=${COMPOSER_BIN:-/usr/local/bin}
[ "$(id -u)" = 0 ] || { echo "install-deps.sh: run it as root (sudo bash scripts/install-deps.sh)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    python3 python3-venv \
    busybox-static nftables iptables iproute2 debootstrap procps psmisc util-linux \
    ca-certificates curl docker-registry skopeo tini openssh-client >/dev/null
# openssh-client: ssh-agent/ssh-add serve build.ssh key files (composer/sshkeys.py)
# COMPOSER_TEST_PEERS=1 (CI: .ci/run): also docker.io (dockerd 20.10, containerd), which
# tests/integration/network/netns/scenario_docker.py starts beside composer's networks. Not for a
# user's install. The package would start the daemons at once (default data root, docker0, a
# FORWARD DROP): a policy-rc.d refusing service starts is in place for the install unless the
# host has one, and the units it enables are disabled again (for the tests, not every boot).
if [ "${COMPOSER_TEST_PEERS:-0}" = 1 ] && ! { command -v dockerd && command -v containerd; } >/dev/null; then
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
# CI's native tiers also compile tests/integration/process/sysprobe.c (raw syscalls from a
# busybox container, for the seccomp tests): a C compiler and the static libc; and load the
# zsh completion in a real zsh (tests/unit/cli/test_completion.py, marker zsh).
if [ "${COMPOSER_TEST_PEERS:-0}" = 1 ]; then
    apt-get install -y -qq --no-install-recommends gcc libc6-dev zsh >/dev/null
fi
# A venv made by another python (e.g. after a distribution upgrade) is rebuilt, not patched.
want=$(python3 -c 'import sys; print(sys.version_info[:2])')
if [ -x "$VENV/bin/python" ] && [ "$("$VENV/bin/python" -c 'import sys; print(sys.version_info[:2])' 2>/dev/null)" != "$want" ]; then
    rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q --no-warn-script-location -e '.[test]'
mkdir -p "$BIN"
for cmd in composer composerd; do ln -sfn "$VENV/bin/$cmd" "$BIN/$cmd"; done
# bash completion, loaded on demand by bash-completion; zsh's, autoloaded by compinit from
# Debian's vendor-completions folder (on zsh's default $fpath) when zsh is installed
COMPLETIONS=${COMPOSER_COMPLETIONS:-/usr/share/bash-completion/completions}
mkdir -p "$COMPLETIONS"
"$VENV/bin/composer" completion bash > "$COMPLETIONS/composer"
ZSH_COMPLETIONS=${COMPOSER_ZSH_COMPLETIONS:-/usr/share/zsh/vendor-completions}
if [ -d "$ZSH_COMPLETIONS" ]; then
    "$VENV/bin/composer" completion zsh > "$ZSH_COMPLETIONS/_composer"
fi
echo "composer installed in $VENV; $(command -v composer) -> $(readlink "$BIN/composer")"

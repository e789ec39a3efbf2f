#!/usr/bin/env bash
# The host tier: run the README's two commands on a typical user host — a throwaway Debian 12
# VM with systemd as pid 1, pure cgroup v2, AppArmor and Debian's own python3
# (../shared/testvm.sh; emulated where there is no usable KVM, so several times slower).
#
#   bash scripts/host-tests.sh                 fresh clone of HEAD: bootstrap.sh (install,
#                                              LNMP up), then scripts/test.sh -m host tests/host
#   bash scripts/host-tests.sh --here [ARGS]   this working tree as it is (uncommitted changes
#                                              included), install only (no LNMP), then pytest ARGS
#                                              (default: -m host tests/host)
# env: TESTVM (path of testvm.sh), HOST_TESTS_TIMEOUT (seconds, default 3300).
# Needs root, qemu-system-x86, qemu-utils, debootstrap, e2fsprogs (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)
TESTVM=${TESTVM:-$repo/../shared/testvm.sh}
[ -x "$TESTVM" ] || [ -f "$TESTVM" ] || { echo "host-tests.sh: no $TESTVM (set TESTVM)" >&2; exit 2; }
timeout=${HOST_TESTS_TIMEOUT:-3300}

if [ "${1:-}" = --here ]; then
    shift
    [ $# -gt 0 ] || set -- -m host tests/host
    printf -v args '%q ' "$@"
    exec bash "$TESTVM" run -t "$timeout" "$repo" -- bash -c \
        "set -e; bash scripts/install-deps.sh; bash scripts/test.sh $args"
fi

# A fresh clone, as a user gets it; the VM shares its folder (at least two levels deep).
work=$(mktemp -d /var/tmp/composer-host.XXXXXX)
trap 'rm -rf "$work"' EXIT  # not `exec` below: the clone would be left behind
git clone -q --no-local "$repo" "$work/composer"
echo "host-tests: fresh clone of $(git rev-parse --short HEAD) in $work/composer"
bash "$TESTVM" run -t "$timeout" "$work/composer" -- bash -c '
    set -e
    trap "rc=\$?; [ \$rc = 0 ] || { echo \"=== composerd.log (exit \$rc)\"; tail -n 60 /run/composer/composerd.log; } 2>/dev/null" EXIT
    start=$(date +%s)
    bash scripts/bootstrap.sh                       # README quick start, command 1
    mid=$(date +%s)
    ( cd examples/lnmp && composer down -v )
    bash scripts/test.sh -m host tests/host         # README quick start, command 2 (host tier)
    end=$(date +%s)
    echo "host-tests: bootstrap $((mid - start)) s, host tier $((end - mid)) s"'

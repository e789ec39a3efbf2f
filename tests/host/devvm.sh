#!/usr/bin/env bash
# A faster loop on the host tier while developing (CI does not use this: it runs
# scripts/host-tests.sh from scratch, as a user would).
#
#   bash tests/host/devvm.sh prepare             once: a copy of testvm.sh's Debian image with
#                                                composer's apt packages and Python deps installed
#   bash tests/host/devvm.sh run DIR -- CMD...   boot that image on DIR (a checkout; shared at the
#                                                same path), install DIR's composer (--no-deps,
#                                                editable, ~20 s), run CMD as root in DIR
# e.g. bash tests/host/devvm.sh run "$PWD" -- bash scripts/test.sh -m host tests/host/cgroups
#
# It saves the ~7 min of apt-get + pip that every fresh VM pays under emulation. The prepared
# image lives in $DEVVM_DIR (default /var/tmp/testvm-dev) and is rebuilt by `prepare` when the
# stock image, scripts/install-deps.sh, pyproject.toml or this script changes (`run` calls it first).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd -P)
TESTVM=${TESTVM:-$here/../shared/testvm.sh}
DEV=${DEVVM_DIR:-/var/tmp/testvm-dev}

prepare() {
    local stock name stamp
    stock=$(bash "$TESTVM" image)              # builds or reuses the stock image
    name=$(basename "$stock")
    # the files' contents only: the same checkout in another worktree shares the image
    stamp=$(cat "$here/scripts/install-deps.sh" "$here/pyproject.toml" "$here/tests/host/devvm.sh" | sha256sum | cut -c1-12)
    if [ -e "$DEV/images/$name/root.raw" ] && [ "$(cat "$DEV/images/$name/stamp" 2>/dev/null)" = "$stamp" ]; then
        echo "devvm: prepared image is current ($DEV/images/$name)"; return
    fi
    rm -rf "$DEV/images"; mkdir -p "$DEV/images/$name" "$DEV/cache"
    cp --sparse=always "$stock"/* "$DEV/images/$name/"
    local src; src=$(mktemp -d /var/tmp/devvm-src.XXXXXX)
    # the packages too: install-deps.sh ends by running `composer completion`
    cp -r "$here/scripts" "$here/pyproject.toml" "$here/README.md" "$here/composer" "$here/runtime" "$src/"
    TESTVM_DIR=$DEV bash "$TESTVM" run -k "$src" -- bash -c \
        'set -e; bash scripts/install-deps.sh; /opt/composer/bin/pip uninstall -q -y composer-orchestrator
         /opt/composer/bin/pip install -q "setuptools>=77" wheel
         rm -f /usr/local/bin/composer /usr/local/bin/composerd'
    local run; run=$(ls -td "$DEV"/runs/run.* | head -1)
    qemu-img commit -q "$run/disk.qcow2"      # the guest's changes go into the copied root.raw
    rm -rf "$run" "$src"
    echo "$stamp" >"$DEV/images/$name/stamp"
    echo "devvm: prepared $DEV/images/$name"
}

case ${1:-} in
    prepare) prepare ;;
    run)
        shift; dir=$1; shift; [ "${1:-}" = -- ] && shift
        prepare >&2  # returns at once when the prepared image is current
        printf -v cmd '%q ' "$@"
        TESTVM_DIR=$DEV exec bash "$TESTVM" run "$dir" -- bash -c \
            "/opt/composer/bin/pip install -q --no-deps --no-build-isolation -e . >/dev/null &&
             ln -sfn /opt/composer/bin/composer /opt/composer/bin/composerd /usr/local/bin/ && $cmd" ;;
    *) sed -n '2,16s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac

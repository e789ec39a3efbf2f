#!/usr/bin/env bash
# The test suite, run by composer's own interpreter (scripts/install-deps.sh makes it).
# Without arguments: every native tier (unit, integration, e2e, reliability, security); needs root for
# all but unit. With arguments they go to pytest as they are, e.g. the host tier inside the
# Debian VM: `bash scripts/test.sh -m host tests/host` (see scripts/host-tests.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${COMPOSER_VENV:-/opt/composer}/bin/python
[ -x "$PY" ] || PY=python3
# On a pure cgroup v2 host the tests that assert v1-only kernel behaviour are deselected by
# their marker (docs/cgroups.md, "Which tests run where").
# Tests beside a peer engine need it installed (CI does: COMPOSER_TEST_PEERS=1); a user's
# checkout without docker.io runs the rest and says so.
if [ $# -eq 0 ]; then
  expr="not host"
  [ -e /sys/fs/cgroup/cgroup.controllers ] && expr="$expr and not cgroup_v1"
  if ! command -v dockerd >/dev/null || ! command -v containerd >/dev/null; then
    expr="$expr and not peers"
    echo "test.sh: docker.io is not installed: the Docker coexistence test is not run" \
         "(COMPOSER_TEST_PEERS=1 bash scripts/install-deps.sh installs it)" >&2
  fi
  set -- -m "$expr" tests
fi
exec "$PY" -m pytest -q -p no:cacheprovider "$@"

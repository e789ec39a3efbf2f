#!/usr/bin/env bash
# The test suite, run by composer's own interpreter (scripts/install-deps.sh makes it).
# Without arguments: every native tier (unit, integration, e2e, reliability); needs root for
# all but unit. With arguments they go to pytest as they are, e.g. the host tier inside the
# Debian VM: `bash scripts/test.sh -m host tests/host` (see scripts/host-tests.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${COMPOSER_VENV:-/opt/composer}/bin/python
[ -x "$PY" ] || PY=python3
# On a pure cgroup v2 host the tests that assert v1-only kernel behaviour are deselected by
# their marker (docs/cgroups.md, "Which tests run where").
if [ $# -eq 0 ]; then
  if [ -e /sys/fs/cgroup/cgroup.controllers ]; then set -- -m "not host and not cgroup_v1" tests
  else set -- -m "not host" tests; fi
fi
exec "$PY" -m pytest -q -p no:cacheprovider "$@"

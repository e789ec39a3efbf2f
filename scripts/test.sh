#!/usr/bin/env bash
# The test suite. Without arguments: every native tier (unit, integration, e2e, reliability);
# needs root for all but unit. With arguments they go to pytest as they are, e.g. the host
# tier inside the Debian VM: `bash scripts/test.sh -m host tests/host` (scripts/host-tests.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then set -- -m "not host" tests; fi
exec python3 -m pytest -q -p no:cacheprovider "$@"

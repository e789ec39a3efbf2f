#!/usr/bin/env bash
# The whole test suite (unit, integration, e2e, reliability). Needs root for all but unit.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 -m pytest -q -p no:cacheprovider tests "$@"

#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root: install composer and what it needs,
# then bring up the LNMP example (nginx + php-fpm + MariaDB) and show its page.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cd examples/lnmp
echo "composer up -d (the first run builds three Debian images: a few minutes)"
time composer up -d
for _ in $(seq 1 60); do
    if curl -fsS http://127.0.0.1:8080/ 2>/dev/null; then
        echo
        echo "LNMP is up on http://127.0.0.1:8080/ ; stop it with: cd examples/lnmp && composer down"
        exit 0
    fi
    sleep 1
done
echo "the page did not answer; see: cd examples/lnmp && composer logs" >&2
exit 1

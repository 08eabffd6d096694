#!/usr/bin/env bash
# Refreshes the pictures in docs/screenshots/ (used by the README and docs) by running the
# browser tests with their screenshots written there. The ordinary test run
# (scripts/test.sh) writes its screenshots to a temporary directory instead.
set -euo pipefail
cd "$(dirname "$0")/.."
KOTAE_SCREENSHOTS="$PWD/docs/screenshots" scripts/test.sh --browser
git status --short docs/screenshots

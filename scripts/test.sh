#!/usr/bin/env bash
# The whole test suite, as CI runs it: the Rust tests, then the browser tests of the host screen
# and the moderator console (a real `kotae serve` driven by Debian's headless Chromium).
#   scripts/test.sh            both
#   scripts/test.sh --rust     the Rust tests only
#   scripts/test.sh --browser  the browser tests only (needs chromium and npm)
# Screenshots go to a temporary directory ($KOTAE_SCREENSHOTS, default $TMPDIR/kotae-screenshots);
# scripts/screenshots.sh refreshes docs/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
# The tests read the tokenizer cache in the checkout's .kotae (built by `kotae setup` with the
# same variable); the binaries they start use it too.
export KOTAE_CACHE="${KOTAE_CACHE:-$PWD/.kotae}"

if [[ "$what" == all || "$what" == --rust ]]; then
  cargo test --release --locked
fi

if [[ "$what" == all || "$what" == --browser ]]; then
  cargo build --release --locked
  # A fresh Debian machine: install the browser, fonts and npm when we may (root with apt-get).
  if [[ ! -x "${CHROMIUM:-/usr/bin/chromium}" || -z "$(command -v npm)" ]] && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null
    command -v npm >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  if [[ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then
    echo "browser tests need Chromium: apt-get install -y chromium fonts-noto-cjk fonts-noto-color-emoji" >&2
    exit 1
  fi
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error && node --test --test-concurrency=1 .)
fi

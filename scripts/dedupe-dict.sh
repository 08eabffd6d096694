#!/usr/bin/env bash
# Removes the later line of every duplicate `kotae check` reports (both normalize to the same key).
set -euo pipefail
kotae=${1:-target/release/kotae}
for _ in 1 2 3 4; do
  dups=$("$kotae" check 2>&1 | grep -oP '^\s+\K[^:]+:\d+(?=: duplicate)' | sort -t: -k1,1 -k2,2nr || true)
  [ -n "$dups" ] || break
  while IFS=: read -r f l; do sed -i "${l}d" "$f"; done <<< "$dups"
done
"$kotae" check

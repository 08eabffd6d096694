#!/usr/bin/env bash
# Loopback benchmark of cluster mode against single mode: CPU µs per message (every kotae
# process plus nats-server, user + system) and the client's p99 at a fixed rate.
#   scripts/bench-cluster.sh [RATE=5000] [SECONDS=20]
# Needs nats-server (apt-get install nats-server) and a release build with `kotae setup` done.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-5000}
SECONDS_RUN=${2:-20}
BIN=./target/release/kotae
WORK=$(mktemp -d)
PIDS=()
# Waits for the processes to end before removing their files (nats-server may still be writing).
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  # Some are not this shell's children (started from a subshell), so `wait` cannot be used.
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
ticks() { # user+system clock ticks of the given pids
  local t=0
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_kotae() { # name, extra args...; prints pid then address
  local name=$1; shift
  cat >"$WORK/$name.toml" <<TOML
[server]
listen = "127.0.0.1:0"
reload_dictionaries = false
max_messages_per_second = 100000
rate_burst = 100000
[server.journal]
path = "$WORK/$name.db"
TOML
  "$BIN" serve --config "$WORK/$name.toml" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do grep -q listening "$WORK/$name.out" 2>/dev/null && break; sleep 0.1; done
  echo "$pid $(sed -n 's#kotae listening on http://##p' "$WORK/$name.out")"
}
run() { # label, target address, pids...
  local label=$1 addr=$2; shift 2
  local hz; hz=$(getconf CLK_TCK)
  local before; before=$(ticks "$@")
  local out; out=$("$BIN" bench-load --to "ws://$addr" --connections 10 --streams 30 --batch 10 --rate "$RATE" --seconds "$SECONDS_RUN")
  local after; after=$(ticks "$@")
  local msgs; msgs=$(echo "$out" | grep -oE '[0-9]+ messages' | head -1 | grep -oE '[0-9]+')
  echo "== $label"
  echo "$out"
  awk -v t=$((after - before)) -v hz="$hz" -v m="$msgs" 'BEGIN { printf "CPU per message: %.1f µs (all processes)\n", t / hz * 1e6 / m }'
}

# start_kotae runs in a subshell here: its pids are recorded again for the cleanup.
read -r SPID SADDR < <(start_kotae single)
PIDS+=("$SPID")
run "single instance, $RATE msgs/s" "$SADDR" "$SPID"
kill "$SPID"

NPORT=$(free_port)
nats-server -js -a 127.0.0.1 -p "$NPORT" -sd "$WORK/js" >"$WORK/nats.log" 2>&1 &
NPID=$!
PIDS+=("$NPID")
sleep 0.5
read -r P1 A1 < <(start_kotae k1 --nats "nats://127.0.0.1:$NPORT" --instance k1)
read -r P2 _ < <(start_kotae k2 --nats "nats://127.0.0.1:$NPORT" --instance k2)
read -r P3 _ < <(start_kotae k3 --nats "nats://127.0.0.1:$NPORT" --instance k3)
PIDS+=("$P1" "$P2" "$P3")
sleep 4 # leases spread
run "cluster of three (load on k1; streams spread over all owners), $RATE msgs/s" "$A1" "$P1" "$P2" "$P3" "$NPID"

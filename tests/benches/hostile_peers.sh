#!/usr/bin/env bash
# Hostile peers against `genesys-notify tail` as a process, on loopback only:
#   flood    the server writes FLOOD tiny malformed frames as fast as the socket takes them
#   stopped  nobody reads tail's stdout while the server bursts BURST events
# For each: peak RSS of tail, bytes it wrote to stderr, and the time from SIGTERM to exit.
#
# usage: tests/benches/hostile_peers.sh TAIL_BIN [SIM_BIN]
#   TAIL_BIN  the genesys-notify binary under test (e.g. a baseline build of an older commit)
#   SIM_BIN   the genesys-notify binary that serves the simulator (default: TAIL_BIN); it
#             must know the `flood` fault
# Prints one line per case: `hostile CASE peak_rss_kib=… stderr_bytes=… sigterm_to_exit_ms=…`.
set -euo pipefail
TAIL_BIN=${1:?usage: hostile_peers.sh TAIL_BIN [SIM_BIN]}
SIM_BIN=${2:-$TAIL_BIN}
FLOOD=${FLOOD:-3000000}
BURST=${BURST:-300000}
GIVE_UP=${GIVE_UP:-60}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

start_sim() {
  "$SIM_BIN" sim --rate 20 >"$work/sim.json" 2>/dev/null &
  sim_pid=$!
  for _ in $(seq 100); do
    [ -s "$work/sim.json" ] && break
    sleep 0.05
  done
  base=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["base_url"])' "$work/sim.json")
  id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_id"])' "$work/sim.json")
  secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$work/sim.json")
}

fault() { curl -s -X POST "$base/__sim/fault" -d "$1" >/dev/null; }

# run_case NAME STDOUT_SINK FAULT
run_case() {
  local name=$1 sink=$2 what=$3
  start_sim
  # `time` reports tail's own peak RSS; `exec` keeps one process between the pipe and tail.
  GENESYS_CLIENT_ID=$id GENESYS_CLIENT_SECRET=$secret /usr/bin/time -f '%M' -o "$work/rss" \
    "$TAIL_BIN" tail --api-base "$base" --topic v2.users.bench.presence \
    2>"$work/stderr" >"$sink" &
  local tail_pid=$!
  sleep 2
  fault "$what"
  sleep 5
  local child
  child=$(pgrep -P "$tail_pid" -f "tail --api-base" || echo "$tail_pid")
  local t0 t1
  t0=$(date +%s%N)
  kill -TERM "$child"
  # A tail that does not exit within GIVE_UP seconds is killed and reported as such.
  local waited=0 killed=""
  while kill -0 "$child" 2>/dev/null && [ "$waited" -lt $((GIVE_UP * 20)) ]; do
    sleep 0.05
    waited=$((waited + 1))
  done
  if kill -0 "$child" 2>/dev/null; then
    killed=" (still running after ${GIVE_UP}s: killed)"
    kill -KILL "$child"
  fi
  t1=$(date +%s%N)
  wait "$tail_pid" || true
  kill "$sim_pid" 2>/dev/null || true
  wait "$sim_pid" 2>/dev/null || true
  echo "hostile $name peak_rss_kib=$(tail -n1 "$work/rss" | tr -dc 0-9) stderr_bytes=$(stat -c %s "$work/stderr") sigterm_to_exit_ms=$(( (t1 - t0) / 1000000 ))$killed"
}

run_case flood /dev/null "flood $FLOOD"
mkfifo "$work/stuck"
# A reader that opens the pipe and never reads: tail blocks once the pipe's 64 KiB are full.
sleep 600 <"$work/stuck" &
run_case stopped "$work/stuck" "burst $BURST"

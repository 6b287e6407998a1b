#!/usr/bin/env bash
# `npm --prefix examples/agent-desktop start`: builds the browser package and this desktop,
# then serves the desktop from the simulator, which is also its Genesys Cloud (a simulated
# organisation that changes by itself). Open the URL it prints. Faults:
# curl -X POST "$BASE/__sim/fault" -d drop
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --no-audit --no-fund
[ -d ../../web/node_modules ] || (cd ../../web && npm ci --no-audit --no-fund)
bash ../../web/build.sh
npm run build
port="${PORT:-8750}"
echo "open http://127.0.0.1:$port/?clientId=genesys-notify-sim (the simulator is the organisation; Ctrl-C stops it)"
exec cargo run --release -p genesys-notify -- sim --static dist --port "$port" \
  --org-rate "${ORG_RATE:-0.5}" --token-ttl "${TOKEN_TTL:-10m}"

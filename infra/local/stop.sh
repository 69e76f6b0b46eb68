#!/usr/bin/env bash
# Stop exactly what infra/local/start.sh started: the PIDs it recorded (and their process
# groups' children), never processes found by name.
set -uo pipefail
cd "$(dirname "$0")/../.."
STATE=${LRFACE_INFRA_DIR:-$PWD/.infra}
[ -s "$STATE/pids" ] || { echo "nothing recorded in $STATE/pids"; exit 0; }
descendants() { local c; for c in $(pgrep -P "$1"); do descendants "$c"; echo "$c"; done; }
while read -r name pid; do
  if kill -0 "$pid" 2>/dev/null; then
    kids=$(descendants "$pid")
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    for k in $kids; do kill -0 "$k" 2>/dev/null && kill -TERM "$k" 2>/dev/null; done
    sleep 1
    for k in $kids; do kill -0 "$k" 2>/dev/null && kill -KILL "$k" 2>/dev/null; done
    echo "stopped $name (pid $pid)"
  else
    echo "$name (pid $pid) was not running"
  fi
done < "$STATE/pids"
rm -f "$STATE/pids" "$STATE/env"

#!/usr/bin/env bash
# Start a Ray head, a Prefect server and an MLflow server on 127.0.0.1 for this repository,
# wait until each is healthy, and print their URLs. Everything started is recorded by PID in
# $LRFACE_INFRA_DIR (default .infra/) so that stop.sh stops exactly that, never by name.
#
#   infra/local/start.sh            # then: eval "$(infra/local/start.sh --env)" prints exports
#   infra/local/stop.sh
#
# Ports (override by env): RAY_PORT 6379, PREFECT_PORT 4200, MLFLOW_PORT 5000.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
VENV_BIN=${VENV_BIN:-$REPO/.venv/bin}
STATE=${LRFACE_INFRA_DIR:-$REPO/.infra}
RAY_PORT=${RAY_PORT:-6379}
PREFECT_PORT=${PREFECT_PORT:-4200}
MLFLOW_PORT=${MLFLOW_PORT:-5000}
HOST=127.0.0.1
# Ray's socket paths must stay under 107 bytes: its temp dir is short, under /tmp.
RAY_TMP=${LRFACE_RAY_TMP:-/tmp/lrface-ray-$(echo "$STATE" | cksum | cut -d' ' -f1)}
mkdir -p "$STATE/logs" "$STATE/prefect" "$STATE/mlflow/artifacts" "$RAY_TMP"

if [ -s "$STATE/pids" ]; then
  echo "already started (see $STATE/pids); run infra/local/stop.sh first" >&2
  exit 1
fi

export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
export PREFECT_HOME=$STATE/prefect PREFECT_SERVER_ANALYTICS_ENABLED=false
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true

record() { echo "$1 $2" >> "$STATE/pids"; }

wait_http() {  # name url seconds pid
  local t=0
  until curl -fsS -o /dev/null "$2"; do
    if ! kill -0 "$4" 2>/dev/null; then echo "$1 exited; see $STATE/logs/$1.log" >&2; return 1; fi
    t=$((t + 1)); [ "$t" -gt "$3" ] && { echo "$1 not healthy after $3 s: $2" >&2; return 1; }
    sleep 1
  done
}

# Ray head: --block keeps `ray start` in the foreground; stopping it stops the node it started.
"$VENV_BIN/ray" start --head --block --node-ip-address=$HOST --port="$RAY_PORT" \
  --include-dashboard=false --temp-dir="$RAY_TMP" --disable-usage-stats \
  > "$STATE/logs/ray.log" 2>&1 &
record ray $!
RAY_PID=$!

PREFECT_UI_API_URL=http://$HOST:$PREFECT_PORT/api "$VENV_BIN/prefect" server start --host $HOST --port "$PREFECT_PORT" \
  > "$STATE/logs/prefect.log" 2>&1 &
record prefect $!
PREFECT_PID=$!

"$VENV_BIN/mlflow" server --host $HOST --port "$MLFLOW_PORT" --workers 1 \
  --backend-store-uri "sqlite:///$STATE/mlflow/mlflow.db" \
  --default-artifact-root "$STATE/mlflow/artifacts" \
  > "$STATE/logs/mlflow.log" 2>&1 &
record mlflow $!
MLFLOW_PID=$!

wait_http prefect "http://$HOST:$PREFECT_PORT/api/health" 120 $PREFECT_PID
wait_http mlflow "http://$HOST:$MLFLOW_PORT/health" 120 $MLFLOW_PID
t=0
until timeout 30 "$VENV_BIN/python" -c "import ray, sys; ray.init(address='$HOST:$RAY_PORT', log_to_driver=False); sys.exit(0 if ray.cluster_resources().get('CPU') else 1)" >/dev/null 2>&1; do
  kill -0 $RAY_PID 2>/dev/null || { echo "ray exited; see $STATE/logs/ray.log" >&2; exit 1; }
  t=$((t + 1)); [ "$t" -gt 60 ] && { echo "ray head not healthy" >&2; exit 1; }
  sleep 1
done

cat > "$STATE/env" <<ENV
export LRFACE_RAY_ADDRESS=$HOST:$RAY_PORT
export PREFECT_API_URL=http://$HOST:$PREFECT_PORT/api
export MLFLOW_TRACKING_URI=http://$HOST:$MLFLOW_PORT
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled PREFECT_SERVER_ANALYTICS_ENABLED=false MLFLOW_DISABLE_TELEMETRY=true
# Ray's single-host mode: a driver keeps 127.0.0.1 as given; otherwise Ray swaps it for the
# default route's IP, where this loopback-only head does not listen.
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
ENV
echo "Ray head:   $HOST:$RAY_PORT            (pid $RAY_PID)"
echo "Prefect UI: http://$HOST:$PREFECT_PORT     (pid $PREFECT_PID)"
echo "MLflow UI:  http://$HOST:$MLFLOW_PORT     (pid $MLFLOW_PID)"
echo "Use them:   . $STATE/env"

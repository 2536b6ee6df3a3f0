#!/usr/bin/env bash
# make demo: Mosquitto (project config, loopback), the gateway (SQLite under ./var/demo) and the simulator with
# the default scenario (sim/scenarios/demo.toml): two posts of a county on a winter night; beside them the web
# console, the notifier and a local webhook receiver that prints each notification (sim/demo.py). Ctrl-C stops all.
# Usage: [CLUSTER=3] scripts/demo.sh [DURATION_SIMULATED_SECONDS]   (CLUSTER: on the cluster path, docs/scale.md)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: two checkpoint posts, four nodes running the real firmware, a broker, the gateway, the web console"
echo "demo: and the notifier; Ctrl-C stops all. Everything lives in var/demo (gateway.db, gateway.toml, *.log)"
exec .venv/bin/python -m sim.demo ${1:+--duration "$1"} ${CLUSTER:+--cluster "$CLUSTER"}

#!/usr/bin/env bash
# make demo: Mosquitto (project config, loopback), the gateway (SQLite under ./var/demo) and the simulator with
# the default scenario (sim/scenarios/demo.toml): two posts of a county on a winter night. Ctrl-C stops all.
# Usage: scripts/demo.sh [DURATION_SIMULATED_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: two checkpoint posts, four nodes running the real firmware, a broker and the gateway; Ctrl-C stops"
echo "demo: everything lives in var/demo (gateway.db, firmware.log, gateway-*.log, truth.jsonl)"
exec .venv/bin/checkpoint-sim run --scenario sim/scenarios/demo.toml --workdir var/demo ${1:+--duration "$1"}

#!/usr/bin/env bash
# make demo: until the checkpoint simulator lands, a live read-out of the simulated sensor through the
# firmware driver. Usage: scripts/demo.sh [DURATION_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/checkpoint-sim readout ${1:+--duration "$1"}

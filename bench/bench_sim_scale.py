"""Simulator scale: how many nodes running the real firmware one process sustains, and the scans/s.

Two runs of `checkpoint-sim run` in one go, same settings but the node count: a baseline of 20 nodes and the
load run of 200 nodes (10 sites x 20). Each node samples its sensor every 20 ms and scans a traveller every
~10 s of simulated time (rate 6/min), at speed 1 (simulated time = real time), so 200 nodes offer ~20 scans/s
and 10,000 sensor samples/s. Figures: scans/s sustained, scans per node-minute against the baseline's
(1.0 = no slowdown from 10x the nodes), lost/duplicates (must be 0), scan-to-alert latency.
Run: .venv/bin/python bench/bench_sim_scale.py [--duration 60] [--nodes 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def run(nodes: int, duration: float, workdir: Path) -> dict[str, Any]:
    sites = max(1, nodes // 20)
    args = ["--sites", str(sites), "--nodes-per-site", str(nodes // sites), "--duration", str(duration)]
    args += ["--speed", "1", "--rate", "6", "--seed", "11", "--workdir", str(workdir), "--json"]
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "sim", "run", *args], capture_output=True, text=True, cwd=REPO, timeout=1800
    )
    if out.returncode != 0:
        raise SystemExit(f"checkpoint-sim run failed:\n{out.stderr[-3000:]}")
    summary: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    summary["wall_s"] = time.monotonic() - t0
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="simulated (= real) seconds per run")
    ap.add_argument("--nodes", type=int, default=200)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        rows = [(n, run(n, a.duration, Path(tmp) / str(n))) for n in (20, a.nodes)]
    per_node = {}
    print(f"{'nodes':>6} {'scans':>6} {'scans/s':>8} {'per node-min':>13} {'lost':>5} {'dup':>4} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'wall s':>7}")  # fmt: skip
    for n, s in rows:
        per_node[n] = s["scans_made"] / n / (a.duration / 60)
        print(
            f"{n:>6} {s['scans_made']:>6} {s['scans_made'] / a.duration:>8.1f} {per_node[n]:>13.2f} {s['lost']:>5} "
            f"{s['duplicates']:>4} {s['latency_p50_ms']!s:>7} {s['latency_p99_ms']!s:>7} {s['wall_s']:>7.1f}"
        )
    ratio = per_node[a.nodes] / per_node[20]
    print(f"scans per node-minute, {a.nodes} nodes vs 20 nodes: {ratio:.2f} (1.0 = no slowdown at scale)")
    bad = any(s["lost"] or s["duplicates"] for _, s in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Sustained ingest: the gateway (QoS 1 in, SQLite commit, receipts, PUBACK after commit) against a bare paho
subscriber that only counts. Same broker, same publisher process, same run. Goal: ratio >= 0.8.

Rate = scans / (time the last one was done - time the publisher started). "Done" is: counted by the bare
subscriber; for the gateway, its receipt back at the publisher (so the row was committed and acknowledged).

With `--against REV` the gateway of another revision runs in the same run, rounds alternating which tree goes
first, so that the load of a shared machine hits both sides: each tree's ratio against its own bare run, and
per round this tree's ratio over REV's. REV (and `--tree REV`, instead of the working tree) is unpacked with
`git archive` into a temporary directory (a directory is used as it is); the broker, the publisher and the bare
subscriber are this tree's.
BENCH_PYSPY=DIR records each gateway run with py-spy (raw collapsed stacks, DIR/round-R-TREE.txt).

Run: .venv/bin/python bench/bench_ingest.py [--n 15000] [--rounds 5] [--against 6ac1ee8 [--tree HEAD]]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gw_common import child, result

from sim.broker import DEFAULT_CONFIG, Broker
from sim.process import GatewayProcess

ROOT = Path(__file__).resolve().parents[1]


def bare_rate(port: int, n: int, nodes: int) -> float:
    counter = child("count", "--port", str(port), "--topic", "checkpoint/v1/bare/+/scan", "--n", str(n))
    assert counter.stdout is not None
    counter.stdout.readline()  # {"ready": true}: subscribed
    pub = result(child("publish", "--port", str(port), "--site", "bare", "--nodes", str(nodes), "--n", str(n)))
    got = result(counter)
    if not got["ok"]:
        raise RuntimeError(f"bare subscriber counted {got['count']} of {n}")
    return n / (got["t_done"] - pub["t_start"])


def profiler(pid: int, name: str) -> subprocess.Popen[bytes] | None:
    """py-spy recording the gateway process until it exits, when BENCH_PYSPY names a directory."""
    out = os.environ.get("BENCH_PYSPY")
    if not out:
        return None
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:  # optional, so not in make setup
        raise SystemExit("bench_ingest: BENCH_PYSPY needs py-spy: .venv/bin/pip install py-spy")
    cmd = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "250", "-o", f"{out}/{name}.txt"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cpu_s(pid: int) -> float:
    """The CPU time (user + system) a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gateway_rate(port: int, n: int, nodes: int, workdir: Path, repo: Path, name: str) -> tuple[float, float]:
    """The gateway's rate, and its CPU time per scan in us (a figure that the machine's other load moves less)."""
    gateway = GatewayProcess(port, f"sqlite:///{workdir / 'bench.db'}", workdir, instance="gw-bench", repo=repo)
    gateway.start()
    pid = gateway.proc.pid if gateway.proc is not None else 0
    spy, cpu_start = profiler(pid, name), cpu_s(pid)
    try:
        args = ["publish", "--port", str(port), "--site", "gw", "--nodes", str(nodes), "--n", str(n), "--receipts"]
        pub = result(child(*args))
        cpu = cpu_s(pid) - cpu_start
    finally:
        gateway.terminate()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
    if not pub["ok"]:
        raise RuntimeError("the gateway did not receipt every scan")
    return n / (pub["t_receipts"] - pub["t_start"]), cpu / n * 1e6


def one_ratio(args: argparse.Namespace, workdir: Path, repo: Path, name: str) -> tuple[float, float]:
    """A fresh broker (the project's config, deploy/mosquitto/local.conf: in-flight window 1000, as in
    production), a bare run then a gateway run on it. Fresh each time: the gateway's session is persistent and
    its subscription (checkpoint/v1/+/+/scan) also matches the bare site, so on a shared broker the next bare
    run's scans were queued for it and it stored them during its own timed run (twice the work)."""
    workdir.mkdir()
    with Broker(config=DEFAULT_CONFIG, workdir=workdir / "broker") as broker:
        bare = bare_rate(broker.port, args.n, args.nodes)
        gw, cpu_us = gateway_rate(broker.port, args.n, args.nodes, workdir, repo, name)
    print(f"  {name}: {args.n} QoS 1 scans from {args.nodes} nodes: bare subscriber {bare:,.0f}/s, gateway "
          f"(committed + acked) {gw:,.0f}/s, ratio {gw / bare:.2f}, gateway CPU {cpu_us:.0f} us/scan",
          flush=True)  # fmt: skip
    return gw / bare, cpu_us


def unpack(rev: str, into: Path) -> Path:
    """The committed tree of `rev`, unpacked (nothing is added to the shared checkout's worktrees or index);
    a directory is taken as it is (a variant being measured)."""
    if Path(rev).is_dir():
        return Path(rev).resolve()
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def spread(values: list[float], fmt: str = ".2f") -> str:
    return f"median {statistics.median(values):{fmt}} (min {min(values):{fmt}}, max {max(values):{fmt}})"


def compare(args: argparse.Namespace, tmp: Path) -> None:
    names = {"this": args.tree or "working tree", "rev": args.against}
    trees = {"this": unpack(args.tree, tmp / "tree") if args.tree else ROOT, "rev": unpack(args.against, tmp / "rev")}
    got: dict[str, list[tuple[float, float]]] = {"this": [], "rev": []}
    for r in range(args.rounds):
        print(f"round {r + 1}:", flush=True)
        for side in ["this", "rev"] if r % 2 == 0 else ["rev", "this"]:
            got[side].append(one_ratio(args, tmp / f"round-{r}-{side}", trees[side], f"round-{r + 1}-{side}"))
        print(f"  {names['this']} / {names['rev']}: {got['this'][-1][0] / got['rev'][-1][0]:.2f}", flush=True)
    for side in ("this", "rev"):
        ratios, cpu = [g[0] for g in got[side]], [g[1] for g in got[side]]
        print(f"{names[side]}: ingest ratio {spread(ratios)}; gateway CPU us/scan {spread(cpu, '.0f')}")
    paired = [a[0] / b[0] for a, b in zip(got["this"], got["rev"], strict=True)]
    print(f"{names['this']} / {names['rev']}, ingest ratio per round: {spread(paired)} (1.00: the same)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=15_000)
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--against", metavar="REV", help="also run REV's gateway, alternating rounds with this tree")
    p.add_argument("--tree", metavar="REV", help="with --against: REV's gateway instead of the working tree's")
    args = p.parse_args()
    if args.tree and not args.against:
        p.error("--tree is for --against")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        if args.against:
            compare(args, Path(tmp))
            return 0
        got = []
        for r in range(args.rounds):
            print(f"round {r + 1}:", flush=True)
            got.append(one_ratio(args, Path(tmp) / f"round-{r}", ROOT, f"round-{r + 1}"))
    print(
        f"ingest: ratio over {args.rounds} rounds {spread([g[0] for g in got])} (goal >= 0.8); gateway CPU us/scan"
        f" {spread([g[1] for g in got], '.0f')}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The simulator drives the cluster path (issue 16): nodes running the real firmware spread over the three
members of the test cluster, the real gateway consuming the work queue over AMQP, a gateway crash and a crash
of the member the first nodes are on; the summary is the gateway's own export against ground truth."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from sim.run import Options, Simulation
from sim.scenario import load
from testkit.rabbitmq import RabbitCluster

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def run(rabbitmq: RabbitCluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    workdir = tmp_path_factory.mktemp("sim-cluster")
    progress = io.StringIO()
    try:
        summary = Simulation(Options(load(HERE / "cluster.toml"), workdir, rabbit=rabbitmq, progress=progress)).run()
    finally:
        rabbitmq.start_member(0)  # up again for the next test, whatever happened here
        rabbitmq.delete_work_queues()
    return summary, progress.getvalue(), workdir


def test_the_nodes_spread_over_the_members_and_move_when_theirs_dies(run: tuple[dict[str, Any], str, Path]) -> None:
    summary, progress, workdir = run
    assert [f["kind"] for f in summary["faults"]] == ["gateway_restart", "broker_restart"], progress
    log = (workdir / "firmware.log").read_text()
    ports = sorted({line.rsplit(":", 1)[1] for line in log.splitlines() if "session: moving to broker member" in line})
    assert ports, "no node moved to another member when its member was killed"
    assert "RabbitMQ cluster" in progress and "gateway over AMQP" in progress


def test_nothing_lost_nothing_stored_twice_every_fever_alerted(run: tuple[dict[str, Any], str, Path]) -> None:
    summary, progress, _ = run
    assert summary["scans_made"] > 40, progress
    assert summary["scans_stored"] == summary["scans_made"]
    assert (summary["lost"], summary["duplicates"], summary["invented"]) == (0, 0, 0)
    assert summary["elevated"] > 0
    assert (summary["alerts_missing"], summary["alerts_extra"]) == (0, 0)

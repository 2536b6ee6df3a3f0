"""Per-unit reference calibration (issue 15 item 3), through the real parts: a simulated MLX90614 unit with gain
1.03 and offset -0.4 C read by the node's own driver at the two reference points, `checkpoint-gateway reference
record` on SQLite and PostgreSQL with a private Mosquitto, the correction pushed retained and taken by the
node's own config door, then node and gateway corrected within 0.05 C over 33-41 C. Bad points are refused
with one line, nothing stored or pushed; an overdue and a drifting unit each raise their alert once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import firmware
from gateway import alerts, reference_alerts
from gateway.protocol import Scan
from gateway.screening import correction
from gateway.store import open_store
from gateway.store.base import NodeRow, ReferenceRow
from sim.broker import Broker
from sim.clock import ManualClock
from sim.i2c import MachineI2C
from sim.mlx90614 import MLX90614
from sim.watch import Watcher
from testkit.gateway import run_cli

config = firmware.module("config")
reference = firmware.module("reference")
Driver: Any = firmware.module("mlx90614").MLX90614
HOUR = 3_600_000


def unit_reads(chip: MLX90614, clock: ManualClock, sensor: Any, true_c: float) -> float:
    """The unit's reading of a reference surface at `true_c` (C), settled, as a scan publishes it (0.01 C)."""
    chip.set_scene(object_c=true_c, ambient_c=22.0)
    clock.advance(5_000)  # well past the part's settling time
    return round(float(sensor.object()), 2)


def test_a_unit_with_gain_1_03_and_offset_minus_0_4_is_corrected_within_0_05_c(
    any_db: str, private_broker: Broker
) -> None:
    clock = ManualClock()
    chip = MLX90614(clock, variant="DCI", noise=False, gain=1.03, offset_c=-0.4)
    sensor = Driver(MachineI2C({0x5A: chip}, freq=100_000))
    lo, hi = reference.REFERENCE_C
    read_lo, read_hi = unit_reads(chip, clock, sensor, lo), unit_reads(chip, clock, sensor, hi)
    open_store(any_db).close()  # the gateway's database, built by the migrations
    done = run_cli("reference", "--db", any_db, "record", "bridge/n1", "--point", f"{lo}={read_lo}",
                   "--point", f"{hi}={read_hi}", "--broker", private_broker.url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "gain 1.03" in done.stdout and "the first check of bridge/n1" in done.stdout, done.stdout
    watcher = Watcher(private_broker.port, "checkpoint/v1/bridge/n1/config")
    try:
        _, push = watcher.wait_for(lambda t, b: "reference" in b, 10)  # retained: the node gets it on connect
    finally:
        watcher.close()
    node_cfg, reason = config.validate({"site": "bridge", "node": "n1", "broker": {"host": "b"}})
    node_cfg, reason = config.merge_push(node_cfg, push)  # the node's own door
    assert reason is None, reason
    ref = config.scan_settings(node_cfg)["ref"]
    worst_node = worst_gateway = worst_raw = 0.0
    for i in range(81):
        true_c = 33.0 + 0.1 * i
        reading = unit_reads(chip, clock, sensor, true_c)
        worst_raw = max(worst_raw, abs(reading - true_c))
        on_node = reference.correct(ref, reading)
        scan = Scan("bridge", "n1", i, 1, None, 1, "forehead", reading, 22.0, None, "normal", (), 9, 600, None,
                    ref_gain=ref["gain"], ref_offset_c=ref["offset_c"], fw="t", cal="c")  # fmt: skip
        at_gateway = reference.correct(correction(scan), scan.t_site_c)  # what the verdict uses
        worst_node = max(worst_node, abs(on_node - true_c))
        worst_gateway = max(worst_gateway, abs(at_gateway - true_c))
    print(f"\nunit 1.03/-0.4: reads {read_lo}/{read_hi} at {lo}/{hi} C, pushed {ref}; worst error over 33-41 C:"
          f" uncorrected {worst_raw:.2f} C, node {worst_node:.3f} C, gateway {worst_gateway:.3f} C")  # fmt: skip
    assert worst_raw > 0.5 and worst_node <= 0.05 and worst_gateway <= 0.05
    store = open_store(any_db)
    try:
        [row] = store.references("bridge", "n1")
        assert (row.ref_lo_c, row.read_lo_c, row.gain, row.config_id) == (lo, read_lo, ref["gain"], push["id"])
        assert [a.action for a in store.audit(None, None)] == ["reference_recorded"]
    finally:
        store.close()
    listed = run_cli("reference", "--db", any_db, "list", "bridge")
    assert "bridge/n1" in listed.stdout and "(UTC)" in listed.stdout and "1 check(s)" in listed.stdout


@pytest.mark.parametrize(
    "points,words",
    [
        (["35.0=34.62"], "give exactly two --point"),
        (["35.0=34.62", "36.0=35.6"], "closer than 2.0 C"),
        (["35.0=35.0", "39.0=39.8"], "gain = 1.2"),
        (["35.0=39.0", "39.0=43.0"], "offset_c = 4.0"),
        (["35.0=abc", "39.0=38.7"], "give REF=READ"),
        (["35.0=nan", "39.0=38.7"], "finite"),
    ],
)
def test_bad_points_are_refused_in_one_line_and_nothing_is_stored_or_pushed(
    tmp_path: Path, points: list[str], words: str
) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    open_store(db).close()
    args = [a for p in points for a in ("--point", p)]
    done = run_cli("reference", "--db", db, "record", "bridge/n1", *args, "--broker", "mqtt://127.0.0.1:9")
    assert done.returncode == 1 and words in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    store = open_store(db)
    try:
        assert store.references() == [] and store.audit(None, None) == []
        with store.transaction() as tx:
            assert tx.node_config("bridge", "n1") is None  # nothing pushed (the broker port is closed anyway)
    finally:
        store.close()


def _check(site: str, node: str, at: int, read_lo: float, read_hi: float) -> ReferenceRow:
    ref = reference.two_point(35.0, read_lo, 39.0, read_hi)
    return ReferenceRow(site, node, at, 35.0, read_lo, 39.0, read_hi, ref["gain"], ref["offset_c"], "c", "cli:t")


def test_an_overdue_unit_and_a_drifting_unit_each_raise_their_alert_once(any_db: str) -> None:
    store = open_store(any_db)
    t0 = 1_767_225_600_000
    try:
        with store.transaction() as tx:
            for n in ("late", "drifting", "steady", "off"):
                tx.save_node(NodeRow("bridge", n, state="offline" if n == "off" else "online", last_seen=t0))
            tx.save_reference(_check("bridge", "late", t0, 34.8, 38.9))
            tx.save_reference(_check("bridge", "drifting", t0 + 10 * HOUR, 34.8, 38.9))
            tx.save_reference(_check("bridge", "drifting", t0 + 11 * HOUR, 35.15, 39.25))  # 0.34 C apart
            tx.save_reference(_check("bridge", "steady", t0 + 10 * HOUR, 34.8, 38.9))
            tx.save_reference(_check("bridge", "steady", t0 + 11 * HOUR, 34.85, 38.95))  # 0.05 C apart
        now = t0 + 13 * HOUR
        first = reference_alerts.check_nodes(store, now, 12 * HOUR, t0)
        again = reference_alerts.check_nodes(store, now + 60_000, 12 * HOUR, t0)
        assert sorted((c.alert.kind, c.alert.node) for c in first) == [
            (alerts.REFERENCE_DRIFT, "drifting"),
            (alerts.REFERENCE_OVERDUE, "late"),  # 13 h since its check; "off" is offline: not screening
        ]
        assert again == []  # once, not at every pass
        assert "0.34 C" in next(c.alert.detail or "" for c in first if c.alert.node == "drifting")
        with store.transaction() as tx:
            tx.save_reference(_check("bridge", "late", now + 120_000, 34.8, 38.9))
        resolved = reference_alerts.check_nodes(store, now + 180_000, 12 * HOUR, t0)
        assert [(c.alert.kind, c.alert.node, c.alert.state) for c in resolved] == [
            (alerts.REFERENCE_OVERDUE, "late", alerts.RESOLVED)
        ]
    finally:
        store.close()


def test_a_later_push_config_carries_the_units_correction(tmp_path: Path, private_broker: Broker) -> None:
    """push-config after a reference check (a new threshold): the retained config and the gateway's kept copy
    still carry the unit's correction, so a node flashed again, or one given the copy on a broker cluster,
    corrects its unit."""
    db = f"sqlite:///{tmp_path / 'g.db'}"
    open_store(db).close()
    recorded = run_cli("reference", "--db", db, "record", "bridge/n1", "--point", "35.0=35.65", "--point",
                       "39.0=39.77", "--broker", private_broker.url)  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr
    pushed = run_cli("push-config", "--db", db, "--site", "bridge", "--node", "n1", "--id", "t-37.4",
                     "--threshold", "37.4", "--broker", private_broker.url)  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    assert "carries bridge/n1's reference correction" in pushed.stdout, pushed.stdout
    watcher = Watcher(private_broker.port, "checkpoint/v1/bridge/n1/config")
    try:
        _, push = watcher.wait_for(lambda t, b: b.get("id") == "t-37.4", 10)
    finally:
        watcher.close()
    assert push["threshold_c"] == 37.4 and push["reference"] == {"gain": 1.03, "offset_c": -0.4}
    store = open_store(db)
    try:
        with store.transaction() as tx:
            kept = tx.node_config("bridge", "n1")
    finally:
        store.close()
    assert kept is not None and '"reference"' in kept.body

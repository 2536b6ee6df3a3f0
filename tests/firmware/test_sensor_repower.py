"""Issue 10 kind 6: sensor EEPROM settings are active only after the part is re-powered (firmware/sensorboot.py).

A DCI canthus kiosk configured with a faster filter (IIR 100 %, FIR 128: 0.26 s instead of the factory 0.65 s)
writes config register 1 at boot; the part runs its old filter until its power is cycled (datasheet; the
simulated chip models it). Before the fix the scan fitted 0.26 s to a 0.65 s part: a 36.5 C canthus in a 22 C
room read 35.65 C, core 37.16 "normal", no flag. Right (calibration fda-flir-g1-2): re-powered, it reads 36.50,
core 38.11 "elevated"; without a power pin the node refuses to screen until the whole node is power-cycled.
The node runs under CPython on a HostBoard in simulated time, and once under the real MicroPython interpreter
with the power pin driven over the bridge.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from firmware import module as firmware_module
from sim.clock import ManualClock
from sim.host.board import FollowerClock, HostBoard
from sim.mlx90614 import MLX90614 as Chip
from sim.travellers import Scene
from testkit.lane import Lane
from testkit.micropython import MicroPythonNode

app = firmware_module("app")
node_mod = firmware_module("node")
record = firmware_module("record")
sensorboot = firmware_module("sensorboot")

POWER_PIN = 13
ISSUE_FILTER = {"iir": 4, "fir": 4, "settle_ms": 260}  # IIR 100 %, FIR 128, as the kiosk's config had it
CANTHUS_C, ROOM_C = 36.5, 22.0
RIGHT_CORE_C = 38.11  # a re-powered part, calibration fda-flir-g1-2 (37.16 "normal" before the fix)
CONFIG1 = 0x05


def kiosk_config(power_pin: int | None, **sensor: Any) -> dict[str, Any]:
    return {
        "site": "bridge-1",
        "node": "kiosk-1",
        "broker": {"host": "127.0.0.1", "port": 1},
        "mode": "canthus",
        "pins": {"sensor_power": power_pin},
        "sensor": {"variant": "DCI", **sensor},
    }


class Kiosk:
    """One boot of a canthus kiosk: its chip (kept across boots), a board, the firmware's Node."""

    def __init__(self, root: Path, chip: Chip, clock: ManualClock, cfg: dict[str, Any], cold: bool = True) -> None:
        self.clock, self.chip = clock, chip
        self.board = HostBoard(clock, str(root), {0x5A: chip}, cold_boot=cold)
        (root / "config.json").write_text(json.dumps(cfg))
        full, settings, reason = app.boot_config(self.board.root)
        assert reason is None, reason
        self.node = node_mod.Node(self.board, full, settings)
        self.results: list[dict[str, Any]] = []
        self.node.observers.append(lambda seq, result: self.results.append(result))
        self.node.setup()
        self.steps(15000)  # the node watches its ambient a while before the first traveller

    def steps(self, ms: int) -> None:
        for _ in range(ms // 20):
            self.node.step()
            self.clock.advance(20)

    def traveller(self) -> list[dict[str, Any]]:
        """The issue's canthus in front of the kiosk until it ends a scan, then gone."""
        before = len(self.results)
        self.chip.set_scene(object_c=CANTHUS_C, ambient_c=ROOM_C)
        self.steps(3000)
        self.chip.set_scene(object_c=ROOM_C, ambient_c=ROOM_C)
        self.steps(1000)
        return self.results[before:]

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.node.uplink.session.status()))


def new_chip() -> tuple[ManualClock, Chip]:
    clock = ManualClock(start_ms=1000)
    chip = Chip(clock, variant="DCI", seed=3, noise=False)
    chip.set_scene(object_c=ROOM_C, ambient_c=ROOM_C)
    clock.advance(300)
    return clock, chip


def assert_the_right_reading(results: list[dict[str, Any]]) -> None:
    assert len(results) == 1
    r = results[0]
    assert r["verdict"] == "elevated" and r["flags"] == []
    assert r["t_site_c"] == pytest.approx(CANTHUS_C, abs=0.02)
    assert r["t_core_c"] == pytest.approx(RIGHT_CORE_C, abs=0.02)


def test_the_issues_kiosk_with_a_power_pin_re_powers_the_part_and_reads_elevated(tmp_path: Path) -> None:
    clock, chip = new_chip()
    kiosk = Kiosk(tmp_path, chip, clock, kiosk_config(POWER_PIN, **ISSUE_FILTER))
    assert chip.eeprom(CONFIG1) & 0x0707 == 0x0404 and chip.eeprom_write_count(CONFIG1) == 2  # erase + write
    power = [(ev.tick, ev.value) for ev in kiosk.board.events if ev.pin == "sensor_power"]
    assert [v for _, v in power] == [0, 1, 0, 1]  # at every boot, and again after the write
    off, on = power[2][0], power[3][0]
    assert on - off >= sensorboot.OFF_MS and chip.powered
    assert kiosk.node.settle_ms == 260 and kiosk.node.settings["settle_ms"] == 260  # read back from the part
    assert kiosk.node.refusal is None and "sensor_error" not in kiosk.status()
    assert_the_right_reading(kiosk.traveller())


def test_without_a_power_pin_the_node_refuses_to_screen_until_it_is_power_cycled(tmp_path: Path) -> None:
    clock, chip = new_chip()
    kiosk = Kiosk(tmp_path, chip, clock, kiosk_config(None, **ISSUE_FILTER))
    assert chip.eeprom(CONFIG1) & 0x0707 == 0x0404  # written, but the part still runs FIR 1024
    assert kiosk.traveller() == [] and kiosk.node.outbox.depth == 0  # no verdict, nothing recorded
    assert kiosk.node.ui.state == "repower" and kiosk.board.leds() in (("amber",), ("amber", "red"))
    assert kiosk.status()["sensor_error"].startswith("sensor_repower_needed")
    assert (tmp_path / sensorboot.MARKER).exists()

    soft = Kiosk(tmp_path, chip, clock, kiosk_config(None, **ISSUE_FILTER), cold=False)  # watchdog reset
    assert soft.node.refusal is not None and soft.traveller() == []  # the part was not re-powered: still refused

    chip.power_cycle()  # staff cycle the kiosk's power: the board and the sensor on its supply
    clock.advance(300)
    again = Kiosk(tmp_path, chip, clock, kiosk_config(None, **ISSUE_FILTER))
    assert again.node.refusal is None and not (tmp_path / sensorboot.MARKER).exists()
    assert again.node.settle_ms == 260 and chip.eeprom_write_count(CONFIG1) == 2  # nothing written again
    assert_the_right_reading(again.traveller())


def test_the_settling_time_is_the_parts_not_the_configs(tmp_path: Path) -> None:
    """A part whose EEPROM holds the fast filter (an earlier config wrote it), under a config that names none:
    the node fits the 0.26 s the part runs, not the DCI's factory 0.65 s."""
    clock, chip = new_chip()
    (tmp_path / "earlier").mkdir()
    Kiosk(tmp_path / "earlier", chip, clock, kiosk_config(POWER_PIN, iir=4, fir=4))
    kiosk = Kiosk(tmp_path, chip, clock, kiosk_config(None))
    assert kiosk.node.settle_ms == 260 and kiosk.node.refusal is None
    assert_the_right_reading(kiosk.traveller())


def test_the_simulated_part_runs_new_eeprom_settings_only_after_its_supply_is_cycled() -> None:
    clock, chip = new_chip()
    driver = firmware_module("mlx90614").MLX90614(HostBoard(clock, "", {0x5A: chip}).i2c)
    assert driver.set_filter(4, 4, clock.advance) is True
    assert chip.settle_ms() == pytest.approx(650, abs=1)  # the old filter until power-up
    chip.power(False)
    with pytest.raises(firmware_module("mlx90614").SensorError, match="nack"):
        driver.ambient()  # no supply: no answer
    chip.power(True)
    with pytest.raises(firmware_module("mlx90614").SensorError, match="not_ready"):
        driver.object()  # first data 0.25 s after power-up
    clock.advance(sensorboot.POWER_UP_MS)
    assert driver.ambient() == pytest.approx(ROOM_C, abs=0.02)
    assert chip.settle_ms() == pytest.approx(260, abs=1)


@pytest.mark.slow
def test_under_micropython_the_bridge_drives_the_power_pin_and_the_kiosk_reads_elevated(tmp_path: Path) -> None:
    clock = FollowerClock()
    chip = Chip(clock, variant="DCI", seed=3, noise=False)
    board = HostBoard(clock, str(tmp_path / "node"), {0x5A: chip})
    lane = Lane(board, chip, [Scene(CANTHUS_C, ROOM_C)], ambient_c=ROOM_C, dwell_ms=300, gap_ms=800, hold_after=0)
    settled = threading.Event()  # the node has watched its ambient for 15 s of its own time
    board.on_tick.append(lambda now: settled.set() if now >= 20000 else None)
    cfg = kiosk_config(POWER_PIN, **ISSUE_FILTER)
    with MicroPythonNode(board, tmp_path / "node", cfg, speed=20) as node:
        node.wait_for(lambda ln: ln.startswith("sensor: runs IIR"), timeout=60)
        assert settled.wait(timeout=60)
        lane.release()
        line = node.wait_for(lambda ln: ln.startswith("scan 0 "), timeout=60)
    assert [ev.value for ev in board.events if ev.pin == "sensor_power"] == [0, 1, 0, 1]
    assert chip.powered and chip.settle_ms() == pytest.approx(260, abs=1)
    assert "sensor: runs IIR 4 FIR 4 settling 260 ms" in node.lines
    _, _, verdict, t_site, t_core, *_ = line.split(" ", 6)
    assert verdict == "elevated", line
    assert float(t_site) == pytest.approx(CANTHUS_C, abs=0.05)
    assert float(t_core) == pytest.approx(RIGHT_CORE_C, abs=0.05)
    assert lane.shown[0].verdict == "elevated"

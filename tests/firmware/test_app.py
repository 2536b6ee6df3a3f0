"""The node (firmware/app.py, node.py) run in-process under CPython on a HostBoard, as the simulator runs it.

Simulated time (ManualClock): each step is one sensor sample; the asyncio tests run single tasks whose
sleeps move the clock.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from firmware import module as firmware_module
from sim.clock import ManualClock
from sim.host.board import HostBoard, PinEvent, VerdictDecoder
from sim.mlx90614 import MLX90614 as Chip

app = firmware_module("app")
node_mod = firmware_module("node")
version = firmware_module("version")
record = firmware_module("record")


class Post:
    """One node at a post: simulated chip, board, config on its filesystem, the firmware's Node."""

    def __init__(self, root: Path, **cfg: Any) -> None:
        self.clock = ManualClock(start_ms=1000)
        self.chip = Chip(self.clock, variant="BAA", seed=3)
        self.chip.set_scene(object_c=22.0, ambient_c=22.0)
        self.board = HostBoard(self.clock, str(root), {0x5A: self.chip})
        self.cfg = {"site": "bridge-1", "node": "lane-2", "broker": {"host": "127.0.0.1"}, **cfg}
        (root / "config.json").write_text(json.dumps(self.cfg))
        full, settings, reason = app.boot_config(self.board.root)
        assert reason is None, reason
        self.node = node_mod.Node(self.board, full, settings)
        self.node.setup()
        self.clock.advance(300)  # the sensor's first data 0.25 s after power-up (the ESP32 boot takes longer)

    def steps(self, ms: int) -> None:
        for _ in range(ms // 20):
            self.node.step()
            self.clock.advance(20)

    def traveller(self, object_c: float, ms: int = 1200) -> None:
        self.chip.set_scene(object_c=object_c, ambient_c=22.0)
        self.steps(ms)
        self.chip.set_scene(object_c=22.0, ambient_c=22.0)
        self.steps(400)


@pytest.fixture
def post(tmp_path: Path) -> Post:
    return Post(tmp_path)


def test_a_result_is_in_the_outbox_before_staff_see_it(post: Post) -> None:
    seen: list[tuple[int, int, int]] = []
    decoder = VerdictDecoder()

    def on_pin(ev: PinEvent) -> None:
        if decoder.feed(ev) is not None:
            seen.append((ev.tick, post.node.outbox.depth, post.clock.ticks_ms()))

    post.board.on_pin.append(on_pin)
    for t in (35.0, 36.9, 34.6):
        post.traveller(t)
    assert [depth for _, depth, _ in seen] == [1, 2, 3]  # appended (durable) before the LEDs changed
    assert all(shown == now for shown, _, now in seen)  # shown in the same step as the result: 0 ms
    pending = post.node.outbox.pending(10)
    assert [seq for seq, _ in pending] == [0, 1, 2]
    scans = [record.unpack(b) for _, b in pending]
    assert [s["verdict"] for s in scans] == [v for _, v in post.board.verdicts_shown()]
    assert all(s["boot"] == 1 and s["ts"] is None for s in scans)


def test_boot_counter_and_seqs_survive_a_reboot(tmp_path: Path) -> None:
    first = Post(tmp_path)
    first.traveller(35.0)
    first.node.outbox.close()
    again = Post(tmp_path)
    assert again.node.boot == 2 and again.node.scanner.last_seq == 0
    again.traveller(35.0)
    seq, payload = again.node.outbox.pending(10)[-1]
    assert seq == 1 and record.unpack(payload)["boot"] == 2


def test_a_long_press_makes_the_next_scan_a_retest_of_the_last(post: Post) -> None:
    post.traveller(37.2)
    post.board.set_input("button", 0)
    post.steps(1100)
    post.board.set_input("button", 1)
    assert post.node.ui.state == "retest"
    post.traveller(37.1)
    seq, payload = post.node.outbox.pending(10)[-1]
    assert seq == 1 and record.unpack(payload)["retest_of"] == 0


def test_a_dead_sensor_shows_the_fault_pattern_and_recovers(post: Post) -> None:
    post.chip.inject("no_device")
    post.steps(1500)
    assert post.node.ui.state == "fault" and post.board.leds() in (("amber", "red"), ())
    post.chip.clear("no_device")
    post.steps(100)
    assert post.node.ui.state == "idle" and post.node.scanner.faults > 0
    assert post.node.outbox.depth == 0  # no traveller, no scan


def test_a_pushed_config_is_applied_and_persisted(post: Post, tmp_path: Path) -> None:
    ok, reason = post.node.on_config({"v": 1, "id": "cfg-2", "threshold_c": 37.0, "intervals": {"health_s": 30}})
    assert (ok, reason) == (True, None)
    on_disk = json.loads((tmp_path / "config.json").read_text())
    assert on_disk["config_id"] == "cfg-2" and on_disk["threshold_c"] == 37.0
    assert on_disk["broker"] == {
        "host": "127.0.0.1",
        "hosts": None,
        "port": 1883,
        "tls": False,
        "cafile": None,
        "user": None,
        "password": None,
        "keepalive_s": 60,
        "hmac_key": None,
    }
    assert post.node.scanner.s["threshold_c"] == 37.0 and post.node.identity["config_id"] == "cfg-2"
    assert post.node.uplink.cfg["health_interval_s"] == 30
    mtime = (tmp_path / "config.json").stat().st_mtime_ns
    assert post.node.on_config({"v": 1, "id": "cfg-2", "threshold_c": 37.0}) == (True, None)  # retained again
    assert (tmp_path / "config.json").stat().st_mtime_ns == mtime  # no flash write for the same config


def test_a_bad_push_is_refused_and_changes_nothing(post: Post, tmp_path: Path) -> None:
    before = (tmp_path / "config.json").read_text()
    ok, reason = post.node.on_config({"v": 1, "id": "cfg-x", "broker": {"host": "evil.example"}})
    assert not ok and reason == "not settable remotely: broker"
    ok, reason = post.node.on_config({"v": 1, "id": "cfg-y", "calibration": {"id": "broken"}})
    assert not ok and reason.startswith("calibration: ")
    assert (tmp_path / "config.json").read_text() == before and post.node.config_id == "local"


def gateway_verdict(seq: int, verdict: str, t_core_c: float | None = 38.4) -> dict[str, Any]:
    return {"v": 1, "seq": seq, "verdict": verdict, "t_core_c": t_core_c, "flags": [], "cal": "c-1"}


def alarms_since(post: Post, tick: int) -> list[PinEvent]:
    """Red LED or buzzer switched on at or after `tick`."""
    return [e for e in post.board.events if e.tick >= tick and e.value and e.pin in ("red", "buzzer")]


def test_a_late_gateway_verdict_never_alarms_the_traveller_in_front(post: Post) -> None:
    """Issue 10 kind 2: the gateway's elevated verdict for seq 0 arrives (after a reconnect) while the fourth
    traveller after it is being scanned: nothing red, no buzzer, the scan in front goes on; logged only."""
    post.traveller(37.2)
    assert post.node.scanner.last_verdict == "elevated"
    for t in (34.8, 35.0, 34.9):
        post.traveller(t)
    post.chip.set_scene(object_c=35.1, ambient_c=22.0)  # traveller 5 steps up
    post.steps(100)
    assert post.node.ui.state == "scanning"
    t0 = post.clock.ticks_ms()
    post.node.on_verdict(gateway_verdict(0, "elevated"))
    assert post.node.ui.state == "scanning" and alarms_since(post, t0) == []
    post.steps(1100)
    post.chip.set_scene(object_c=22.0, ambient_c=22.0)
    post.steps(400)
    assert [v for _, v in post.board.verdicts_shown()] == ["elevated", "normal", "normal", "normal", "normal"]


def test_a_late_verdict_on_an_idle_node_is_a_quiet_notice(post: Post) -> None:
    post.traveller(37.2)
    post.steps(node_mod.VERDICT_WINDOW_MS)  # the traveller's window is over
    t0 = post.clock.ticks_ms()
    post.node.on_verdict(gateway_verdict(0, "elevated"))
    assert post.node.ui.state == "late" and post.board.leds() == ("green", "amber")
    post.steps(2000)
    assert alarms_since(post, t0) == [] and post.node.ui.state == "idle"


def test_the_gateway_agreeing_is_shown_as_agreement_not_a_diagnosis(post: Post) -> None:
    post.traveller(37.2, ms=800)  # still in front
    t0 = post.clock.ticks_ms()
    post.node.on_verdict(gateway_verdict(0, "elevated"))
    assert post.node.ui.state == "agrees" and post.board.leds() == ("red",)
    assert not post.board.level("buzzer") and not [e for e in alarms_since(post, t0) if e.pin == "buzzer"]


def test_a_verdict_the_node_did_not_give_is_shown_for_the_traveller_in_front(post: Post) -> None:
    post.traveller(35.0, ms=800)
    assert post.node.scanner.last_verdict == "normal"
    post.node.on_verdict(gateway_verdict(0, "elevated"))  # the gateway's calibration reads this one elevated
    assert post.node.ui.state == "elevated" and post.board.leds() == ("red",) and post.board.level("buzzer")


def test_the_gateways_normal_never_silences_the_nodes_elevated(post: Post) -> None:
    post.traveller(37.2, ms=800)
    post.node.on_verdict(gateway_verdict(0, "normal", 37.0))
    assert post.node.ui.state == "elevated"


def test_health_has_the_nodes_figures(post: Post) -> None:
    post.traveller(35.0)
    h = post.node.health()
    assert h["scans"] == 1 and h["fw"] == version.FW and h["sensor_errors"] == 0 and h["uptime_ms"] > 0


def test_a_crashed_task_is_logged_and_restarted(post: Post) -> None:
    calls = []

    async def flaky() -> None:
        calls.append(post.clock.ticks_ms())
        if len(calls) == 1:
            raise RuntimeError("boom")

    async def run() -> None:
        post.node.supervisor.spawn("flaky", flaky)
        for _ in range(5):
            await asyncio.sleep(0)

    asyncio.run(run())
    assert len(calls) == 2 and post.node.supervisor.restarts == 1
    assert calls[1] - calls[0] >= 1000  # restarted after a pause, not in a tight loop


def test_the_watchdog_is_fed_only_while_scan_and_uplink_progress(post: Post) -> None:
    async def run() -> tuple[int, int]:
        task = asyncio.create_task(post.node.watchdog_task())
        post.node.scan_tick = post.clock.ticks_ms()
        post.node.uplink.last_progress_ms = post.clock.ticks_ms()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        fed_while_alive = post.board.watchdog.feeds  # type: ignore[union-attr]
        for _ in range(6):  # the scan loop is stuck: 3 s pass without a sample
            await asyncio.sleep(0)
        stuck = post.board.watchdog.feeds  # type: ignore[union-attr]
        task.cancel()
        return fed_while_alive, stuck

    fed, stuck_feeds = asyncio.run(run())
    assert fed >= 1
    assert post.board.watchdog is not None and post.board.watchdog.expired()  # the hardware would reset
    assert stuck_feeds <= fed + 1


def test_observers_hear_every_recorded_scan_with_its_seq(post: Post) -> None:
    heard: list[tuple[int | None, str]] = []
    post.node.observers.append(lambda seq, result: heard.append((seq, result["verdict"])))
    for t in (35.0, 34.6):
        post.traveller(t)
    assert heard == [(seq, record.unpack(b)["verdict"]) for seq, b in post.node.outbox.pending(10)]

    def flash_full(payload: bytes) -> int:
        raise OSError(28, "ENOSPC")

    post.node.outbox.append = flash_full
    post.traveller(35.0)
    assert len(heard) == 3 and heard[-1][0] is None  # refused by the outbox: still heard, without a seq


def test_the_link_led_follows_the_uplinks_link_state(post: Post) -> None:
    linkstate = firmware_module("linkstate")
    post.node.uplink.link_state.set(linkstate.UP)
    assert post.board.level("link") == 1
    post.node.uplink.link_state.set(linkstate.DOWN)
    assert post.board.level("link") == 0 and post.node.ui.link == linkstate.DOWN


def test_a_failing_flash_still_shows_the_verdict_and_is_counted(post: Post) -> None:
    def flash_full(payload: bytes) -> int:
        raise OSError(28, "ENOSPC")  # fault injection: the flash refuses the write

    post.node.outbox.append = flash_full
    post.traveller(35.0)
    assert [v for _, v in post.board.verdicts_shown()] in (["normal"], ["elevated"])  # staff still get it
    assert post.node.health()["outbox_errors"] == 1 and post.node.supervisor.restarts == 0


def test_without_a_distance_sensor_the_node_says_how_near_to_hold_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10 kind 12: a node that cannot range says at boot how near staff must hold it (a BAA's 90 deg
    view is filled by a 50 mm forehead only within 25 mm; a BCC's within 79 mm: docs/firmware.md's table)."""
    for unit in ("baa", "bcc", "ranging"):
        (tmp_path / unit).mkdir()
    Post(tmp_path / "baa")
    assert "distance: no distance sensor: hold the forehead within 25 mm of the sensor" in capsys.readouterr().out
    Post(tmp_path / "bcc", sensor={"variant": "BCC"})
    assert "hold the forehead within 79 mm" in capsys.readouterr().out
    Post(tmp_path / "ranging", sensor={"variant": "BCC", "distance": "vl53l0x"})
    assert "no distance sensor" not in capsys.readouterr().out

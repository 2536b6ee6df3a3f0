"""Staff feedback (firmware/ui.py) on recorded pins: what staff see and hear, and when."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware import module as firmware_module
from sim.clock import ManualClock
from sim.host.board import HostBoard

linkstate = firmware_module("linkstate")
ui = firmware_module("ui")


def panel(tmp_path: Path) -> tuple[ManualClock, HostBoard, object]:
    """A UI on recorded pins wired as the default config wires them."""
    clock = ManualClock()
    board = HostBoard(clock, str(tmp_path), {})
    board.setup(None)
    wiring = firmware_module("config").DEFAULTS["pins"]
    names = {"green": "led_green", "amber": "led_amber", "red": "led_red", "buzzer": "buzzer", "link": "led_link"}
    return clock, board, ui.UI(clock, {n: board.out(wiring[key]) for n, key in names.items()})


def run(clock: ManualClock, u: object, ms: int) -> None:
    for _ in range(ms // 20):
        clock.advance(20)
        u.tick()  # type: ignore[attr-defined]


def beeps(board: HostBoard) -> int:
    return sum(1 for e in board.events if e.pin == "buzzer" and e.value == 1)


@pytest.mark.parametrize(
    "verdict,leds,n_beeps,lasts_ms",
    [
        ("normal", ("green",), 1, 2000),
        ("elevated", ("red",), 3, 5000),
        ("indeterminate", ("amber",), 2, 3000),
        ("invalid", ("amber", "red"), 1, 3000),
    ],
)
def test_each_verdict_has_its_own_pattern_shown_at_once(
    tmp_path: Path, verdict: str, leds: tuple[str, ...], n_beeps: int, lasts_ms: int
) -> None:
    clock, board, u = panel(tmp_path)
    u.show_result({"verdict": verdict, "t_core_c": 37.9 if verdict != "invalid" else None})  # type: ignore[attr-defined]
    assert board.leds() == leds and board.level("buzzer") == 1  # set before show_result returned: 0 ms
    assert board.verdicts_shown() == [(0, verdict)]
    run(clock, u, lasts_ms - 40)
    assert u.state == verdict  # type: ignore[attr-defined]  # still showing
    run(clock, u, 200)
    assert board.leds() == () and board.level("buzzer") == 0 and u.state == "idle"  # type: ignore[attr-defined]
    assert beeps(board) == n_beeps
    assert board.verdicts_shown() == [(0, verdict)]  # later beeps of one pattern are not new verdicts


def test_a_new_verdict_replaces_the_old_pattern(tmp_path: Path) -> None:
    clock, board, u = panel(tmp_path)
    u.show_result({"verdict": "elevated", "t_core_c": 38.4})  # type: ignore[attr-defined]
    run(clock, u, 400)
    u.show("scanning")  # type: ignore[attr-defined]
    assert board.leds() == ("amber",) and board.level("buzzer") == 0
    run(clock, u, 400)
    u.show_result({"verdict": "normal", "t_core_c": 36.8})  # type: ignore[attr-defined]
    assert [v for _, v in board.verdicts_shown()] == ["elevated", "normal"]


def test_link_led_tells_the_connection_state(tmp_path: Path) -> None:
    clock, board, u = panel(tmp_path)
    u.set_link(linkstate.UP)  # type: ignore[attr-defined]
    assert board.level("link") == 1
    u.set_link(linkstate.WIFI)  # type: ignore[attr-defined]
    run(clock, u, 2000)
    toggles = [e for e in board.events if e.pin == "link"]
    assert 3 <= len(toggles) <= 6  # slow blink: Wi-Fi up, broker not
    u.set_link(linkstate.DOWN)  # type: ignore[attr-defined]
    run(clock, u, 1000)
    assert board.level("link") == 0


def test_link_led_follows_the_link_state_as_events(tmp_path: Path) -> None:
    """The LED is written when the link state changes, and only then: nobody polls the link."""
    _, board, u = panel(tmp_path)
    state = linkstate.LinkState()
    heard: list[int] = []
    state.listen(heard.append)
    state.listen(u.set_link)  # type: ignore[attr-defined]
    for s in (linkstate.WIFI, linkstate.UP, linkstate.UP, linkstate.DOWN, linkstate.DOWN):
        state.set(s)
        if s == linkstate.UP:
            assert board.level("link") == 1
    assert heard == [linkstate.DOWN, linkstate.WIFI, linkstate.UP, linkstate.DOWN]  # changes only
    assert board.level("link") == 0 and u.link == linkstate.DOWN  # type: ignore[attr-defined]


def test_safe_mode_blinks_its_code_and_repeats(tmp_path: Path) -> None:
    clock, board, u = panel(tmp_path)
    u.safe_mode(2)  # type: ignore[attr-defined]
    run(clock, u, 2 * (2 * 500 + 1500) - 100)
    red_on = [e for e in board.events if e.pin == "red" and e.value == 1]
    assert len(red_on) == 4  # two blinks, pause, two blinks

"""firmware/conditions.py: whose conditions failed a reading, how long until the scanner is usable, and the retest
codes a node hands out (issue 14). Run in this CPython and in the real MicroPython (the codes' bookkeeping must
not grow the heap of a node whose travellers never come back)."""

from __future__ import annotations

import json
import math
import subprocess

from firmware import DIR as FIRMWARE_DIR
from firmware import module as firmware_module
from testkit.micropython import micropython_command

conditions = firmware_module("conditions")


def diff(a: int, b: int) -> int:
    return a - b


def test_whose_conditions_the_scanner_before_the_traveller() -> None:
    assert conditions.whose(["cold_skin", "cold_ambient"]) == conditions.SCANNER
    assert conditions.whose(["sensor_unsettled"]) == conditions.SCANNER
    assert conditions.whose(["below_baseline"]) == conditions.TRAVELLER
    assert conditions.whose(["not_skin"]) is None


def test_codes_start_with_the_nodes_last_digit_and_never_go_back_after_a_reboot() -> None:
    codes = conditions.Codes("bridge-north-2")
    codes.recorded(41)  # at boot: the last seq on flash
    assert codes.case(None, "elevated") == 243
    codes.recorded(42)
    assert codes.case(None, "normal") is None  # a normal result opens no case
    codes.recorded(43)
    again = conditions.Codes("bridge-north-2")
    again.recorded(43)  # rebooted: seeded from the outbox's seq, past every code given before
    assert again.case(None, "indeterminate") == 245


def test_a_retest_without_a_code_names_the_oldest_pending_case_and_a_retest_closes_it() -> None:
    codes = conditions.Codes("n1")
    codes.recorded(-1)
    first = codes.case(None, "indeterminate")
    codes.recorded(0)
    second = codes.case(None, "indeterminate")
    codes.recorded(1)
    assert (first, second) == (101, 102) and codes.seq_of(first) == 0
    named = codes.retested(None)  # a node without a display
    assert named == first
    assert codes.case(named, "normal") == first  # the retest carries the case's code
    codes.recorded(2)
    assert codes.seq_of(first) is None and codes.retested(None) == second


def test_pending_cases_are_bounded_the_oldest_gives_way() -> None:
    codes = conditions.Codes("n3")
    codes.recorded(-1)
    given = []
    for seq in range(conditions.PENDING_MAX + 5):
        given.append(codes.case(None, "indeterminate"))
        codes.recorded(seq)
    assert codes.pending == conditions.PENDING_MAX
    assert codes.retested(None) == given[5]
    assert codes.seq_of(given[4]) is None and codes.seq_of(given[-1]) == conditions.PENDING_MAX + 4


def test_a_scanner_cooling_in_the_cold_is_unsettled_and_told_to_move_warmer() -> None:
    """Carried from 21 C into -6 C air with a time constant of 2 minutes: the rate is far above 0.3 C/min and it
    would settle below the calibration's 18 C, so there is no wait that helps (None)."""
    watch = conditions.AmbientWatch()
    for t in range(0, 61_000, 250):
        watch.feed(t, -6 + 27 * math.exp(-t / 120_000), diff)
    assert watch.unsettled(diff)
    assert watch.wait_s(18.0, diff) is None


def test_a_scanner_warming_in_its_housing_gets_a_finite_wait() -> None:
    """From 12 C towards a 21 C housing (tau 1 min): settling, with a wait of a few minutes."""
    watch = conditions.AmbientWatch()
    for t in range(0, 61_000, 250):
        watch.feed(t, 21 - 9 * math.exp(-t / 60_000), diff)
    wait = watch.wait_s(18.0, diff)
    assert watch.unsettled(diff) and wait is not None and 30 <= wait <= 600


PROGRAM = """
import gc, json, sys
sys.path.insert(0, {dir!r})
import conditions
codes = conditions.Codes("n1")
codes.recorded(-1)
free = [0, 0, 0]
def run(n, start):
    for seq in range(start, start + n):
        codes.case(None, "indeterminate")
        codes.recorded(seq)
for i, (n, start) in enumerate(((5, 0), (995, 5), (4000, 1000))):
    run(n, start)
    gc.collect()
    free[i] = gc.mem_free()
print(json.dumps({{"free": free, "pending": codes.pending}}))
"""


def test_pending_cases_do_not_grow_micropythons_heap() -> None:
    out = subprocess.run(
        [*micropython_command(), "-c", PROGRAM.format(dir=str(FIRMWARE_DIR))],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["pending"] == conditions.PENDING_MAX
    after_5, after_1000, after_5000 = got["free"]
    assert after_5000 >= after_1000 >= after_5, got  # 5 cases pending, then PENDING_MAX

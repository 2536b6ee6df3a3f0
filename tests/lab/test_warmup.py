"""Warm-up at a cold post (issue 17 item 4): the node's own settling check on the thermal model gives the
figures docs/firmware.md states, and the wait it shows staff is the truth at the shipped sampling rate."""

from __future__ import annotations

from pathlib import Path

from lab import warmup

DOC = Path(__file__).resolve().parents[2] / "docs" / "firmware.md"


def test_the_warm_up_figures_are_the_ones_in_the_docs() -> None:
    rows = {r.case: r for r in (warmup.measure(c) for c in warmup.CASES)}
    booth, store, car, insulated, bare = (rows[c.name] for c in warmup.CASES)
    assert booth.usable_from_s is not None and booth.usable_from_s < 30  # after the first judged span only
    assert car.usable_from_s is not None and 13 * 60 < car.usable_from_s < 16 * 60  # -6 -> 20 C, tau 5 min
    assert store.usable_from_s is not None and 9 * 60 < store.usable_from_s < car.usable_from_s
    assert insulated.usable_until_s is not None and 10 * 60 < insulated.usable_until_s < 11 * 60  # below 18 C
    assert bare.usable_from_s is None and bare.shown_wait_s is None  # "move it somewhere warmer"
    for r in (store, car):  # what staff read at one minute is within 5 % of the truth
        assert r.shown_wait_s is not None and r.true_wait_s is not None
        assert abs(r.shown_wait_s - r.true_wait_s) <= 0.05 * r.true_wait_s
    text = DOC.read_text(encoding="utf-8")
    for line in warmup.table(list(rows.values())).splitlines():
        assert line in text, f"docs/firmware.md is out of date: run python -m lab.warmup ({line})"

"""The fast path for well-formed scans accepts exactly what the full checks accept, and builds the same Scan.

gateway/protocol.py validates a scan in one pass first (`read_scan_fast`) and falls back to the named checks on
anything unusual. A difference would store a scan the protocol rejects, or a different value: so thousands of
seeded mutations of a valid scan go through both paths.
"""

from __future__ import annotations

import math
import random
from typing import Any

from gateway import protocol
from testkit.node import scan_payload

REF = {"ref_gain": 1.03, "ref_offset_c": -0.4}  # a unit's reference correction: half the scans carry one
FIELDS = list(scan_payload("s", "n", 1, **REF))
ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 7, 2**63, -(2**63), 2**70, 1.5, -273.2, 36.6, 500.0, math.nan, math.inf,
    -math.inf, "", "x", "forehead", "canthus", "normal", "elevated", "invalid", " ", "\x00", "a" * 300, [],
    ["unstable"], ["Bad Flag"], ["x"] * 100, {}, 1_767_225_600_000, 946_684_800_000, 0.95, -2.5, 3.5,
]  # fmt: skip


def full(obj: dict[str, Any], site: str, node: str) -> protocol.Scan | None:
    scan = protocol.read(protocol.Scan, obj, site, node)
    return scan if isinstance(scan, protocol.Scan) else None


def mutate(rng: random.Random) -> dict[str, Any]:
    obj = scan_payload("bridge-1", "lane-1", rng.randrange(0, 50), **(REF if rng.random() < 0.5 else {}))
    for _ in range(rng.randrange(0, 3)):
        field = rng.choice(FIELDS)
        roll = rng.random()
        if roll < 0.1:
            obj.pop(field, None)
        elif roll < 0.2:
            obj[field] = rng.uniform(-100, 1e6)
        else:
            obj[field] = rng.choice(ODD_VALUES)
    if rng.random() < 0.1:
        obj["extra"] = "ignored"
    return obj


def test_fast_path_agrees_with_full_checks_on_mutated_scans() -> None:
    rng = random.Random(20261128)
    accepted = 0
    for _ in range(30_000):
        obj = mutate(rng)
        fast = protocol.read_scan_fast(obj, "bridge-1", "lane-1")
        slow = full(obj, "bridge-1", "lane-1")
        if fast is not None:
            accepted += 1
            assert slow is not None, f"fast path accepted what the protocol rejects: {obj!r}"
            assert fast == slow
            assert [type(getattr(fast, f)) for f in fast.__slots__] == [type(getattr(slow, f)) for f in slow.__slots__]
    assert accepted > 1000  # the valid scans and harmless mutations really took the fast path


def test_valid_scan_takes_the_fast_path_with_the_same_result() -> None:
    obj = scan_payload("bridge-1", "lane-1", 5, retest_of=4, flags=["unstable"], t_core_c=None)
    assert protocol.read_scan_fast(obj, "bridge-1", "lane-1") == full(obj, "bridge-1", "lane-1")

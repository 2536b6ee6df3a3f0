"""Issue 14, item 4: a retest finds its traveller by the case's code, on any node of the site.

A traveller is screened elevated at n1 (code 107: the medic's case) and another indeterminate at n1 (code 108:
cold skin, retest after 10 minutes inside). Both come back to n2 (the heated room's node), where staff enter the
codes. The gateway links n2's scans to n1's cases: the fever alert is updated (retest_confirmed), not raised a
second time; the report counts both cases retested with their outcomes, and a case nobody came back for as never
retested.
"""

from __future__ import annotations

from typing import Any

from gateway import report
from testkit.node import scan_payload

FEVER = {"t_site_c": 36.8, "t_amb_c": 22.0, "t_core_c": 38.0, "verdict": "elevated"}
COLD = {"t_site_c": 31.0, "t_amb_c": 22.0, "t_core_c": None, "verdict": "indeterminate", "flags": ["cold_skin"]}


def scan(node: str, seq: int, **fields: Any) -> dict[str, Any]:
    return scan_payload("bridge", node, seq, **fields)


def test_a_retest_code_links_across_two_nodes_of_a_site(start_gateway, nodes) -> None:
    gw = start_gateway()
    n1, n2 = nodes("bridge", "n1"), nodes("bridge", "n2")
    n1.send([scan("n1", 0, code=107, **FEVER), scan("n1", 1, code=108, wait_s=600, **COLD)])
    n1.send([scan("n1", 2, code=109, wait_s=600, **COLD)])  # this traveller never comes back
    assert n1.wait_receipts(range(3), timeout=15)
    n2.send([scan("n2", 0, code=107, retest_code=107, **FEVER), scan("n2", 1, code=108, retest_code=108)])
    assert n2.wait_receipts(range(2), timeout=15)

    [fever] = [a for a in gw.store.alerts(None, None, "bridge") if a.kind == "fever"]
    assert (fever.node, fever.seq) == ("n1", 0)
    assert fever.confirmed_at is not None  # the retest on n2 confirmed it
    reasons = [e.reason for e in gw.store.alert_events(fever.alert_id)]
    assert reasons[-1] == "retest_confirmed"

    rows = list(gw.store.scans(None, None, "bridge"))
    assert [(r.node, r.seq, r.code, r.retest_code) for r in rows if r.node == "n2"] == [
        ("n2", 0, 107, 107),
        ("n2", 1, 108, 108),
    ]
    [tally] = report.retest_tally(rows)
    assert tally == {
        "site": "bridge", "cases": 3, "elevated_cases": 1, "indeterminate_cases": 2, "retested": 2,
        "then_normal": 1, "then_elevated": 1, "then_indeterminate": 0, "never_retested": 1,
    }  # fmt: skip


def test_a_retest_code_of_another_site_links_nothing(start_gateway, nodes) -> None:
    gw = start_gateway()
    a, b = nodes("bridge", "n1"), nodes("tollgate", "n1")
    a.send([scan("n1", 0, code=107, **FEVER)])
    assert a.wait_receipts([0], timeout=15)
    b.send([scan_payload("tollgate", "n1", 0, code=107, retest_code=107, **FEVER)])
    assert b.wait_receipts([0], timeout=15)
    fevers = [x for x in gw.store.alerts(None, None, None) if x.kind == "fever"]
    assert sorted((x.site, x.confirmed_at is None) for x in fevers) == [("bridge", True), ("tollgate", True)]

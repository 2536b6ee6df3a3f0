"""Bad input through a real broker: quarantined with the right reason, and valid traffic keeps flowing."""

from __future__ import annotations

import json
import logging

from gateway.logs import RateLimitedLog
from gateway.protocol import MAX_PAYLOAD_BYTES
from testkit.gateway import FakeClock
from testkit.node import scan_payload


def test_every_class_of_bad_input_is_quarantined_while_valid_scans_are_stored(start_gateway, nodes) -> None:
    gw = start_gateway()
    node = nodes("bridge", "n1")
    good = lambda seq, **kw: json.dumps(scan_payload("bridge", "n1", seq, **kw)).encode()  # noqa: E731
    bad = [
        ("not_utf8", "scan", b'{"v":1,"site":"\xff"}'),
        ("not_json", "scan", b"{oops"),
        ("not_object", "scan", b"[]"),
        ("oversize", "scan", good(90, pad="x" * MAX_PAYLOAD_BYTES)),
        ("bad_version", "scan", good(91, v=2)),
        ("missing_field:t_amb_c", "scan", good(92).replace(b'"t_amb_c": 24.0, ', b"")),
        ("wrong_type:seq", "scan", good(93).replace(b'"seq": 93', b'"seq": "93"')),
        ("not_finite:t_site_c", "scan", good(94).replace(b'"t_site_c": 34.0', b'"t_site_c": NaN')),
        ("out_of_range:t_site_c", "scan", good(95, t_site_c=1037.55)),
        ("identity_mismatch", "scan", json.dumps(scan_payload("bridge", "n2", 96)).encode()),
        ("out_of_range:state", "status", b'{"v":1,"state":"asleep"}'),
        ("wrong_type:rssi", "health", b'{"v":1,"rssi":"weak"}'),
    ]
    seq = 0
    for _, kind, payload in bad:  # a valid scan between every two bad messages
        node.send_seqs([seq])
        node.publish_raw(payload, kind)
        seq += 1
    node.publish_raw(good(97), topic="checkpoint/v1/Bridge/n1/scan")  # bad identifier in the topic
    node.send_seqs([seq])
    assert node.wait_receipts(range(seq + 1), timeout=20), "valid scans stopped flowing"

    stored = [r.seq for r in gw.store.scans(None, None, None)]
    assert stored == list(range(seq + 1))
    reasons = [q.reason for q in gw.store.quarantine(None, None, None)]
    assert reasons == [reason for reason, _, _ in bad] + ["bad_identifier"]
    first = next(iter(gw.store.quarantine(None, None, None)))
    assert (first.topic, first.payload, first.site, first.node) == (
        "checkpoint/v1/bridge/n1/scan",
        b'{"v":1,"site":"\xff"}',
        "bridge",
        "n1",
    )
    oversize = next(q for q in gw.store.quarantine(None, None, None) if q.reason == "oversize")
    assert len(oversize.payload) == 256 and oversize.size > MAX_PAYLOAD_BYTES
    # The node learns that its unreadable-but-attributable scan 95 was rejected (it is kept in quarantine).
    assert 95 in node.rejected and 96 not in node.rejected


def test_rejections_are_logged_at_most_once_a_minute_per_key(caplog) -> None:
    clock = FakeClock()
    limited = RateLimitedLog(logging.getLogger("test.limit"), 60_000, clock)
    with caplog.at_level(logging.WARNING, logger="test.limit"):
        assert limited.warning(("bridge/n1", "not_json"), "bad one")
        for _ in range(5):
            assert not limited.warning(("bridge/n1", "not_json"), "bad one")
        assert limited.warning(("bridge/n2", "not_json"), "other node")
        clock.advance(60_000)
        assert limited.warning(("bridge/n1", "not_json"), "bad one")
    assert [r.getMessage() for r in caplog.records] == [
        "bad one",
        "other node",
        "bad one (+5 like it not logged in the last minute)",
    ]

"""A post whose nodes are all offline (its link or power, not one unit) is one post_offline alert that tells the
medic and the coordinator to phone the post; one node of two offline is only that node's alert; the post's alert
resolves when any node comes back (issue 13 item 5). Through a real broker and the real gateway."""

from __future__ import annotations

from gateway import alerts
from gateway.notify import messages
from gateway.store.base import AlertEvent
from gateway.web.i18n import Zones


def _open_post_alerts(gw) -> list:
    return [a for a in gw.store.alerts(None, None, "hill", open_only=True) if a.kind == alerts.POST_OFFLINE]


def test_every_node_of_a_post_offline_is_one_post_alert_until_one_returns(start_gateway, nodes, watch) -> None:
    gw = start_gateway()
    topic = watch("checkpoint/v1/alerts/#")
    a, b = nodes("hill", "a"), nodes("hill", "b")
    for n in (a, b):
        n.send_seqs([0])
        assert n.wait_receipts([0])

    a.close()  # its offline status, as its last will would say
    topic.wait_for(lambda t, m: m["kind"] == "node_offline" and m["node"] == "a")
    assert _open_post_alerts(gw) == []  # one unit down: the post still screens and uploads

    b.close()
    _, post = topic.wait_for(lambda t, m: m["kind"] == "post_offline")
    assert (post["site"], post["node"], post["state"]) == ("hill", alerts.WHOLE_POST, "raised")
    assert [x.detail for x in _open_post_alerts(gw)] == ["all 2 nodes offline: a, b"]

    back = nodes("hill", "b")  # reconnects: online again
    _, resolved = topic.wait_for(lambda t, m: m["kind"] == "post_offline" and m["state"] == "resolved")
    assert (resolved["alert_id"], resolved["reason"]) == (post["alert_id"], "node_back")
    assert _open_post_alerts(gw) == []
    back.close()


def test_the_post_alert_message_says_phone_the_post_in_both_languages() -> None:
    change = alerts.raise_node(alerts.POST_OFFLINE, "hill", alerts.WHOLE_POST, "status", 1_796_078_756_290,
                               detail="all 2 nodes offline: a, b")  # fmt: skip
    event: AlertEvent = change.event
    zones = Zones("Asia/Shanghai")
    texts = {}
    for locale in ("zh-CN", "en"):
        for form in ("long", "short"):
            ctx = messages.Context(locale, form, "", {"hill": "Hill post"}, zones, change.alert.opened_at + 60_000)
            texts[locale, form] = messages.render(change.alert, event, 0, "ref1", ctx)
    assert "卡点全部设备离线" in texts["zh-CN", "long"][0] and "全部设备" in texts["zh-CN", "long"][0]
    assert "请立即致电卡点" in texts["zh-CN", "long"][1] and "all 2 nodes offline: a, b" in texts["zh-CN", "long"][1]
    assert "Phone the post now" in texts["en", "long"][1] and "every node" in texts["en", "long"][0]
    assert "phone the post now" in texts["en", "short"][1] and " * " not in texts["en", "short"][1]

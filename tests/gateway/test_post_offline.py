"""A post whose nodes are all offline (its link or power, not one unit) is one post_offline alert that tells the
medic and the coordinator to phone the post; one node of two offline is only that node's alert; a retired node
does not count; the post's alert resolves when any node comes back (issue 13 item 5). Through a real broker,
the real gateway (SQLite and PostgreSQL) and the real notifier posting to a webhook on loopback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import alerts
from gateway.notify import messages
from gateway.notify.send import Sender
from gateway.notify.worker import Notifier
from gateway.service import wall_ms
from gateway.signing import NodeEntry, Registry
from gateway.store import Store, open_store
from gateway.store.base import AlertEvent, NodeRow, SiteRow
from gateway.web.i18n import Zones
from sim.broker import Broker
from testkit.gateway import REPO
from testkit.notify import deliveries, settings
from testkit.receivers import Webhook

ZONE = "Asia/Shanghai"


@pytest.fixture
def db_url(any_db: str) -> str:
    """The gateway fixtures' database: each test here runs on SQLite and on PostgreSQL."""
    return any_db


@pytest.fixture
def post(db_url: str, tmp_path: Path) -> str:
    """Site hill ("Hill post"): nodes a and b provisioned, and `old`, retired, whose last state was online (it
    was unplugged and retired without a word): the registry's path."""
    live = (("hill", "a"), ("hill", "b"), ("elsewhere", "probe"))
    registry = Registry({(s, n): NodeEntry(s, n, "ab" * 32, f"{s}.{n}", 0) for s, n in live})
    registry.nodes[("hill", "old")] = NodeEntry("hill", "old", "cd" * 32, "hill.old", 0, retired=1)
    registry.save(tmp_path / "registry.json")
    store = open_store(db_url)
    with store.transaction() as tx:
        tx.save_site(SiteRow("hill", "Hill post", "county-a", ZONE))
        tx.save_node(NodeRow("hill", "old", state="online", last_seen=1))
    store.close()
    return str(tmp_path / "registry.json")


@pytest.fixture
def spawn(private_broker: Broker) -> Iterator:
    """A node as a process of its own (testkit.node), connected with its last will: kill it and the broker says
    "offline" for it, as it does for a node that lost its power or its link."""
    procs: list[subprocess.Popen[str]] = []

    def start(site: str, node: str) -> subprocess.Popen[str]:
        cmd = [sys.executable, "-m", "testkit.node", "--port", str(private_broker.port), "--site", site, "--node", node]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO))
        assert procs[-1].stdout is not None and procs[-1].stdout.readline().strip() == "ready"
        return procs[-1]

    yield start
    for p in procs:
        p.kill()
        p.wait()


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.kill()  # no DISCONNECT: the broker publishes the node's last will
    proc.wait()


def _open_post_alerts(store: Store) -> list:
    return [a for a in store.alerts(None, None, "hill", open_only=True) if a.kind == alerts.POST_OFFLINE]


def _notifier(store: Store, webhook: Webhook) -> Notifier:
    """The example config's route: a post dark, raised and resolved, to the medics (zh-CN, long) and the
    coordinators (en, short)."""
    section = settings({
        "receivers": {
            "medics": {"url": webhook.url("medics"), "locale": "zh-CN"},
            "coordinators": {"url": webhook.url("coordinators"), "locale": "en", "form": "short"},
        },
        "routes": [
            {"kinds": ["post_offline"], "states": ["raised", "resolved"], "receivers": ["medics", "coordinators"]}
        ],
    })  # fmt: skip
    return Notifier(store, section, Sender(5.0), wall_ms)


def test_every_node_of_a_post_offline_is_one_post_alert_until_one_returns(
    start_gateway, nodes, spawn, watch, db_url, post
) -> None:
    start_gateway(overrides={"gateway.registry": post})
    topic = watch("checkpoint/v1/alerts/#")
    store = open_store(db_url)
    a, b = spawn("hill", "a"), spawn("hill", "b")
    probe = nodes("elsewhere", "probe")
    probe.send_seqs([0])  # once this is receipted, the gateway has read a's and b's "online" published before
    assert probe.wait_receipts([0])
    assert [(n.node, n.state) for n in store.nodes("hill")] == [("a", "online"), ("b", "online"), ("old", "online")]

    _kill(a)
    topic.wait_for(lambda t, m: m["kind"] == alerts.NODE_OFFLINE and m["node"] == "a")
    assert _open_post_alerts(store) == []  # one unit down: the post still screens and uploads

    _kill(b)
    _, raised = topic.wait_for(lambda t, m: m["kind"] == alerts.POST_OFFLINE)
    assert (raised["site"], raised["node"], raised["state"], raised["reason"]) == ("hill", "*", "raised", "status")
    assert raised["detail"] == "all 2 nodes offline: a, b"  # the retired unit is not one of the post's nodes
    [alert] = _open_post_alerts(store)
    since = Zones(ZONE).local(alert.opened_at, "hill").strftime("%H:%M")

    with Webhook() as webhook:
        notifier = _notifier(store, webhook)
        assert notifier.step() == 2  # the medics and the coordinators: the outbox's deliveries, sent
        webhook.wait_for(lambda: len(webhook.posts) == 2)
        texts = {p.path: p.text for p in webhook.posts}
        assert f"卡点 Hill post 全部 2 台设备自 {since} ({ZONE}) 起离线" in texts["/medics"]
        assert "请立即致电卡点" in texts["/medics"]
        assert "[Post offline] Hill post" in texts["/coordinators"]
        assert "all 2 nodes offline; phone the post now" in texts["/coordinators"]
        assert sorted(d[1] for d in deliveries(store)) == ["coordinators", "medics"]

        back = nodes("hill", "b")  # reconnects: its status says online
        _, resolved = topic.wait_for(lambda t, m: m["kind"] == alerts.POST_OFFLINE and m["state"] == "resolved")
        assert (resolved["alert_id"], resolved["reason"]) == (raised["alert_id"], "node_back")
        assert _open_post_alerts(store) == []
        assert notifier.step() == 2
        webhook.wait_for(lambda: len(webhook.posts) == 4)
        assert "a node of the post is back online" in webhook.posts[-1].text + webhook.posts[-2].text
    back.close()
    store.close()


def test_the_post_alert_message_says_phone_the_post_in_both_languages() -> None:
    change = alerts.raise_post_offline("hill", ["a", "b"], "status", 1_796_078_756_290)  # 2026-12-01 06:45:56 CST
    event: AlertEvent = change.event
    texts, later = {}, change.alert.opened_at + 60_000
    for locale in ("zh-CN", "en"):
        for form in ("long", "short"):
            ctx = messages.Context(locale, form, "", {"hill": "Hill post"}, Zones(ZONE), later)
            texts[locale, form] = messages.render(change.alert, event, 0, "ref1", ctx)
    assert texts["zh-CN", "long"][0] == "[卡点全部设备离线] Hill post · 全部设备"
    assert f"卡点 Hill post 全部 2 台设备自 06:45 ({ZONE}) 起离线" in texts["zh-CN", "long"][1]
    assert "请立即致电卡点" in texts["zh-CN", "long"][1]
    assert f"all 2 nodes of post Hill post offline since 06:45 ({ZONE})" in texts["en", "long"][1]
    assert "Phone the post now" in texts["en", "long"][1]
    en_sms, zh_sms = texts["en", "short"][1], texts["zh-CN", "short"][1]
    assert en_sms == "[Post offline] Hill post 06:45 CST all 2 nodes offline; phone the post now #ref1"
    assert zh_sms == "[卡点全部设备离线] Hill post 06:45 CST 全部 2 台设备离线; 请立即致电卡点 #ref1"

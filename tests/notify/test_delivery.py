"""A fever reaches a medic's chat group (a JSON webhook, zh-CN) and the duty doctor's mailbox (SMTP, English)
through Apprise, over real HTTP and SMTP on loopback; a receiver that is down gets everything after it comes
back, oldest first, after a summary line; every attempt is recorded."""

from __future__ import annotations

import itertools

from gateway import alerts
from gateway.store import Store
from testkit.gateway import FakeClock
from testkit.notify import CONSOLE, POST, act, attempts, deliveries, notifier, raise_fever, settings
from testkit.receivers import Mailbox, Webhook


def _routes(webhook: Webhook, mailbox: Mailbox) -> dict[str, object]:
    return {
        "receivers": {
            "medics-g7": {"url": webhook.url("dingtalk-bridge"), "locale": "zh-CN"},
            "duty-doctor": {"url": mailbox.url("${SMTP_PASSWORD}", "duty@county.example"), "locale": "en"},
        },
        "routes": [
            {"kinds": ["fever"], "states": ["raised", "acknowledged"], "receivers": ["medics-g7", "duty-doctor"]}
        ],
    }


def test_a_fever_reaches_a_webhook_in_chinese_and_a_mailbox_in_english(store: Store, clock: FakeClock) -> None:
    with Webhook() as webhook, Mailbox("gateway", "smtp-pass-7Qx") as mailbox:
        n = notifier(store, settings(_routes(webhook, mailbox)), clock, {"SMTP_PASSWORD": "smtp-pass-7Qx"})
        alert = raise_fever(store, clock, seq=42, t_core=38.6)
        clock.advance(60_000)
        assert n.step() == 2
        webhook.wait_for(lambda: len(webhook.posts) == 1)
        mailbox.wait_for(lambda: len(mailbox.mails) == 1)
        zh, en = webhook.posts[0].text, mailbox.texts()[0]
        link = f"{CONSOLE}/alerts/{alert.alert_id}"
        assert webhook.posts[0].path == "/dingtalk-bridge"
        for expected in ("发热", POST, "设备 n1", "2026-11-30 08:53:20 CST (Asia/Shanghai)", "已持续 1 分钟",
                         "38.6 °C", "体温计", link, f"{alert.alert_id}#1"):  # fmt: skip
            assert expected in zh, expected
        for expected in ("Fever", POST, "node n1", "08:53:20 CST (Asia/Shanghai)", "open 1 min",
                         "infrared core estimate 38.6 °C", "Re-check with a clinical thermometer", link):  # fmt: skip
            assert expected in en, expected
        assert mailbox.mails[0][0] == ["duty@county.example"]
        assert mailbox.logins == ["gateway"]
        assert [d[2] for d in deliveries(store)] == ["sent", "sent"]
        assert {(a[1], a[4], a[5]) for a in attempts(store)} == {
            ("medics-g7", "sent", None),
            ("duty-doctor", "sent", None),
        }

        act(store, alert.alert_id, lambda a: alerts.acknowledge(a, "medic:wang", "10.0.0.5", clock()))
        n.step()
        webhook.wait_for(lambda: len(webhook.posts) == 2)
        assert "已接手" in webhook.posts[1].text and "wang" in webhook.posts[1].text
        assert n.step() == 0  # nothing twice


def test_a_receiver_down_for_an_hour_gets_the_backlog_oldest_first_after_a_summary(
    store: Store, clock: FakeClock
) -> None:
    webhook = Webhook()  # its port is chosen, nothing listens on it yet: the receiver is down
    section = settings({
        "retry_first_s": 5, "retry_max_s": 600, "summary_after": 3,
        "receivers": {"medics": {"url": webhook.url(), "locale": "en"}},
        "routes": [{"receivers": ["medics"]}],
        "timing": {"fever": {"repeat_min": 0, "escalate_min": 0}},
    })  # fmt: skip
    n = notifier(store, section, clock)
    raised = []
    for second in range(0, 3600, 15):  # an hour, the notifier passing every 15 s; a fever every 7.5 minutes
        if second % 450 == 0:
            raised.append(raise_fever(store, clock, seq=second, t_core=38.0 + len(raised) / 10).alert_id)
        n.step()
        clock.advance(15_000)
    tried = attempts(store)
    assert tried and all(a[4] == "failed" and "127.0.0.1" in (a[5] or "") for a in tried)
    assert {a[0] for a in tried} == {raised[0] + "#1"}  # only the oldest is tried while the receiver is down
    gaps = [b[3] - a[3] for a, b in itertools.pairwise(tried)]
    assert gaps == sorted(gaps) and max(gaps) <= 600_000  # exponential backoff, capped

    with webhook:
        clock.advance(600_000)
        n.step()
        webhook.wait_for(lambda: len(webhook.posts) == 9)
    assert "8 notifications were held" in webhook.posts[0].text
    refs = [p.body["message"].rsplit("Ref: ", 1)[1] for p in webhook.posts[1:]]
    assert refs == [a + "#1" for a in raised]  # oldest first, each once
    assert all(d[2] == "sent" for d in deliveries(store))

"""Issue 11 audit, gap 2: a forged command refused by a node is known at the gateway. The node counts what it
refused in its status (auth_refused since its boot, auth_error the last kind and why: firmware/downlink.py);
the gateway raises one forged_command alert per episode (to medics on the alerts topic, like every node alert),
logs a line naming the node and what was refused, and keeps the count for the nodes page. The alert stays open
through a clean status (the node rebooted: its count is 0 again) until a person closes it as handled; after that
the same status again raises nothing, a new refusal a new alert.

On the production broker (deploy/mosquitto/production.conf as provisioned, TLS: testkit/production.py) with the
real gateway; the node's status is the firmware's own bytes (Session.status after its Downlink refused a forged
receipt and a forged config). Each step ends on a scan whose receipt the node reads: the gateway handles one
node's messages in order, so the status before it has been handled when the receipt comes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import firmware
from gateway import alerts
from gateway.signing import new_key, sign
from gateway.store import Store, open_store
from gateway.store.base import AlertRow
from sim.clock import ManualClock
from testkit.gateway import FakeClock, InProcessGateway, make_config
from testkit.node import scan_payload
from testkit.production import Conn, Deployment, connect, node, provisioned

session_mod, downlink_mod = firmware.module("session"), firmware.module("downlink")
outbox_mod, receipts_mod = firmware.module("outbox"), firmware.module("receipts")
P, SITE, NODE = "checkpoint/v1", "bridge-1", "lane-1"
STRANGER_KEY = new_key()  # the forger's: not the node's


def topic(kind: str) -> str:
    return f"{P}/{SITE}/{NODE}/{kind}"


class Firmware:
    """The node's Session and Downlink with its provisioned key (a reboot: Firmware(...) with the next boot)."""

    def __init__(self, root: Path, broker: dict[str, Any], boot: int) -> None:
        identity = {"site": SITE, "node": NODE, "fw": "0.1.0", "boot": boot, "config_id": "cfg-1"}
        self.session = session_mod.Session(broker, P, identity, ManualClock())
        outbox = outbox_mod.Outbox(str(root / "outbox"))
        outbox.open()
        receipts = receipts_mod.Receipts(outbox, ManualClock(), 120_000, {"receipted": 0, "resends": 0})
        self.downlink = downlink_mod.Downlink(topic(""), receipts, self.session, lambda m: (True, None),
                                              lambda m: None, asyncio.Event())  # fmt: skip

    def forged(self, kind: str, body: dict[str, Any]) -> None:
        self.downlink.on_message(topic(kind), sign(STRANGER_KEY, topic(kind), json.dumps(body).encode(), 1), False)


class Post:
    """The provisioned deployment's broker, the gateway on it, the node's account and a medic's."""

    def __init__(self, d: Deployment, store: Store, clock: FakeClock, lane: Conn, medic: Conn) -> None:
        """`store`: a connection of the test's own to the gateway's database (as the console has)."""
        self.d, self.store, self.clock, self.lane, self.medic = d, store, clock, lane, medic
        self.seq = 0

    def status(self, fw: Firmware) -> None:
        """The node's status, then a scan: handled when its receipt comes back."""
        self.lane.publish(topic("status"), fw.session.status())
        self.lane.publish(topic("scan"), json.dumps(scan_payload(SITE, NODE, self.seq)).encode())
        while json.loads(self.lane.got.get(timeout=10).payload).get("seqs") != [self.seq]:
            pass
        self.seq += 1

    def forged_alerts(self) -> list[AlertRow]:
        return [a for a in self.store.alerts(None, None, SITE) if a.kind == alerts.FORGED_COMMAND]


@pytest.fixture
def post(tmp_path: Path) -> Iterator[Post]:
    d = provisioned(tmp_path, [f"{SITE}/{NODE}"], readers=("medic",))
    d.set_password("medic", "medic-pass")
    tls = {"mqtt.broker": f"mqtts://127.0.0.1:{d.tls_port}", "mqtt.ca_file": str(d.ca.crt),
           "mqtt.username": "gateway", "mqtt.password_file": str(d.dir / "gateway.password"),
           "gateway.registry": str(d.dir / "registry.json")}  # fmt: skip
    clock, db = FakeClock(), f"sqlite:///{tmp_path / 'gateway.db'}"
    with d.broker():
        gw = InProcessGateway(make_config(d.tls_port, db, overrides=tls), clock).start()
        lane, medic, store = node(d, SITE, NODE), connect(d, "medic", "medic-pass"), open_store(db)
        lane.subscribe(topic("receipt"))
        medic.subscribe(f"{P}/alerts/#")
        yield Post(d, store, clock, lane, medic)
        for c in (lane, medic):
            c.close()
        store.close()
        gw.stop()


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.ingest"]
    return [line for line in lines if "(forged or replayed)" in line]


def test_a_refused_forgery_is_one_alert_a_log_line_and_stays_until_a_person_closes_it(
    post: Post, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.ingest")
    broker = json.loads((post.d.dir / "nodes" / SITE / NODE / "config.json").read_text())["broker"]
    (tmp_path / "node").mkdir()
    fw = Firmware(tmp_path / "node", broker, boot=4)
    fw.forged("receipt", {"v": 1, "seqs": [0, 1, 2]})  # the attacker frees the node's scans: refused
    post.status(fw)
    (alert,) = post.forged_alerts()
    assert alert.state == alerts.RAISED and alert.reason == "auth_refused"
    assert alert.detail == "1 refused since boot 4, the last: receipt: bad_signature"
    assert refusal_lines(caplog) == ["bridge-1/lane-1 refused 1 command(s) sent to it (forged or replayed), 1 since"
                                     " its boot 4, the last: receipt: bad_signature"]  # fmt: skip
    event = json.loads(post.medic.got.get(timeout=10).payload)  # routed to medics like every node alert
    assert (event["kind"], event["state"], event["node"]) == (alerts.FORGED_COMMAND, alerts.RAISED, NODE)
    row = post.store.nodes(SITE)[0]
    assert (row.auth_refused, row.auth_error) == (1, "receipt: bad_signature")

    post.status(fw)  # the same status again (as the retained one comes back): nothing new
    fw.forged("config", {"v": 1, "id": "evil", "threshold_c": 38.5, "mode": "forehead"})
    post.status(fw)  # one more refusal in the same episode: a line, no second alert
    assert len(post.forged_alerts()) == 1 and len(refusal_lines(caplog)) == 2
    assert refusal_lines(caplog)[1].endswith("refused 1 command(s) sent to it (forged or replayed), 2 since its"
                                             " boot 4, the last: config: bad_signature")  # fmt: skip

    post.status(Firmware(tmp_path / "node", broker, boot=5))  # rebooted, clean: the alert stays open
    (alert,) = post.forged_alerts()
    assert alert.state == alerts.RAISED and post.store.nodes(SITE)[0].auth_refused is None
    closed = alerts.resolve_by(alert, "medic:li", "10.0.0.9", alerts.HANDLED, "broker accounts checked", 0,
                               post.clock())  # fmt: skip
    with post.store.transaction() as tx:  # as the console writes it (gateway/web/actions.py)
        assert tx.update_alert(closed.alert, closed.event, seen_events=alert.events)

    rebooted = Firmware(tmp_path / "node", broker, boot=5)
    post.status(rebooted)  # the clean status again after the close: nothing
    assert [a.state for a in post.forged_alerts()] == [alerts.RESOLVED] and len(refusal_lines(caplog)) == 2
    post.clock.advance(60_000)
    rebooted.forged("verdict", {"v": 1, "seq": 0, "verdict": "normal"})
    post.status(rebooted)  # a new refusal after the close: a new episode
    assert [a.state for a in post.forged_alerts()] == [alerts.RESOLVED, alerts.RAISED]
    assert post.forged_alerts()[1].detail == "1 refused since boot 5, the last: verdict: bad_signature"
    secrets = (broker["hmac_key"], broker["password"], STRANGER_KEY)
    assert not any(s in caplog.text or s in str(post.forged_alerts()) for s in secrets)

"""Issue 10 on the node's uplink, the real firmware under MicroPython (tests/firmware/mp/net_uplink_node.py)
against a real Mosquitto, for two inputs the other tests reach only in parts.

Kind 3 (the node's part): the gateway rejects a scan (kept whole in its quarantine, named in the receipt's
`rejected`). Before, the firmware freed only `seqs`, so it resent such a scan forever. Right: freed at once,
never sent again, counted as `rejected` in the uplink's figures of its health.
Kind 7: the broker given as a host name and a DNS server that takes 5 s. Before, the loop stopped for 5,022 ms.
Right: the scans go on at their period (the longest gap between two scans' uptime_ms stays near it) while the
node asks again and again, connecting nowhere.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from sim.broker import Broker
from sim.host.udp import DnsStub
from testkit.gateway import ReceiptingGateway
from testkit.micropython import ESP32_HEAP, compile_firmware, interpreters

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = str(ROOT / "tests/firmware/mp/net_uplink_node.py")
# The longest wait between two scans of a 50 ms period that still means "never held": a blocking resolver
# would show its timeout (2 s) or the server's 5 s.
LOOP_GAP_MS = 250


class RejectingGateway(ReceiptingGateway):
    """Receipts every scan as stored, except those in `reject`: named in `rejected` (as gateway/ingest.py does
    for a scan it keeps in its quarantine)."""

    def __init__(self, port: int, site: str, node: str, reject: set[int]) -> None:
        super().__init__(port, site, node)
        self.reject = reject

    def _scan(self, client: mqtt.Client, body: dict[str, Any], raw: bytes) -> None:
        if body["seq"] not in self.reject:
            super()._scan(client, body, raw)
            return
        self.scans.append(body)
        self.raw.append(raw)
        receipt = {"v": 1, "seqs": [], "rejected": [body["seq"]]}
        client.publish(self.base + "/receipt", json.dumps(receipt), qos=1)


def run_node(tmp_path: Path, port: int, node: str, **opts: Any) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    """The MicroPython node to its end: exit status, the scans it recorded, its final figures."""
    given = {"dir": str(tmp_path / "outbox"), "port": port, "site": "bridge-1", "node": node,
             "linkdown": str(tmp_path / "linkdown"), **opts}  # fmt: skip
    opts_file = tmp_path / "opts.json"
    opts_file.write_text(json.dumps(given))
    command = [*interpreters(ESP32_HEAP)["micropython"], PROGRAM, str(compile_firmware()), str(opts_file)]  # as uplink
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    lines = out.stdout.splitlines()
    scans = [json.loads(ln.split(" ", 2)[2]) for ln in lines if ln.startswith("rec ")]
    [end] = [ln for ln in lines if ln.startswith(("done ", "timeout "))] or [f"none {out.stderr!r}"]
    assert end.startswith(("done ", "timeout ")), end
    return out.returncode, scans, json.loads(end.split(" ", 1)[1])


def test_a_rejected_scan_is_freed_never_resent_and_counted(broker: Broker, tmp_path: Path) -> None:
    gw = RejectingGateway(broker.port, "bridge-1", "n-reject", reject={1, 3}).start()
    try:  # 20 scans over 4 s, each unreceipted record resent after 1 s: a rejected one kept would go again
        code, scans, stats = run_node(tmp_path, broker.port, "n-reject", n=20, interval_ms=200, deadline_ms=30000,
                                      receipt_timeout_s=1)  # fmt: skip
    finally:
        gw.stop()
    assert code == 0 and stats["depth"] == 0
    assert len(scans) == 20
    assert gw.deliveries(1) == 1 and gw.deliveries(3) == 1  # freed by the receipt, not resent
    assert stats["counts"]["rejected"] == 2 and stats["counts"]["receipted"] == 18
    assert any(h.get("uplink", {}).get("rejected") == 2 for h in gw.health)  # in the node's health


def test_a_slow_dns_server_for_the_broker_never_holds_the_scans(broker: Broker, tmp_path: Path) -> None:
    dns = DnsStub()
    dns.delay_s = 5.0
    try:  # 100 scans at 50 ms while every lookup of the broker's name outlasts the resolver's 2 s
        code, scans, stats = run_node(tmp_path, broker.port, "n-dns", n=100, interval_ms=50, deadline_ms=6000,
                                      host="broker.checkpoint.test", dns=dns.port)  # fmt: skip
        asked = dns.requests
    finally:
        dns.close()
    assert code == 2 and len(scans) == 100 and stats["depth"] == 100  # nowhere to send them: all kept
    assert stats["counts"]["connects"] == 0 and asked >= 2  # gave up and asked again
    uptimes = [s["uptime_ms"] for s in scans]
    gaps = [b - a for a, b in itertools.pairwise(uptimes)]
    assert max(gaps) < LOOP_GAP_MS, gaps

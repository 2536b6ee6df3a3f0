"""Attack 2 of issue 11: whoever can publish on a node's topics (a broker account, a compromised broker, the
proxy of test_mitm.py) sends it receipts, verdicts and configs. A provisioned node (broker.hmac_key) acts only
on those the gateway signed for it with a counter above the last: a forged receipt frees nothing, a forged or
replayed config is refused and reported in status, and the HMAC is RFC 2104's (checked against CPython's hmac
and run on the real MicroPython)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

import firmware
from gateway import protocol
from gateway.ingest import Outgoing
from gateway.signing import NodeEntry, Registry, Signer, new_key, sign
from sim.clock import ManualClock
from testkit.micropython import interpreters
from testkit.node import scan_payload

auth = firmware.module("auth")
contract = firmware.module("contract")
downlink_mod = firmware.module("downlink")
outbox_mod = firmware.module("outbox")
receipts_mod = firmware.module("receipts")
record = firmware.module("record")
session_mod = firmware.module("session")
PREFIX = contract.PREFIX
SITE, NODE = "bridge-1", "lane-1"
KEY, OTHER_KEY = new_key(), new_key()
NOW = 1_767_225_600_000


def topic(kind: str, node: str = NODE) -> str:
    return contract.topic(PREFIX, SITE, node, kind)


class Node:
    """The firmware's Downlink with a key, over a real outbox holding seqs 0..n-1 (a reboot: Node(root) again)."""

    def __init__(self, root: Path, n: int = 0) -> None:
        identity = {"site": SITE, "node": NODE, "fw": "0.1.0", "boot": 4, "config_id": "cfg-1"}
        broker = {"host": "broker", "port": 8883, "hmac_key": KEY}
        self.session = session_mod.Session(broker, PREFIX, identity, ManualClock())
        self.outbox = outbox_mod.Outbox(str(root / "outbox"))
        self.outbox.open()
        body = scan_payload(SITE, NODE, 0)
        for _ in range(n):
            self.outbox.append(record.pack({k: v for k, v in body.items() if k not in ("v", "site", "node", "seq")}))
        self.counts: dict[str, int] = {"receipted": 0, "resends": 0}
        receipts = receipts_mod.Receipts(self.outbox, ManualClock(), 120_000, self.counts)
        self.configs: list[dict[str, Any]] = []
        self.verdicts: list[dict[str, Any]] = []
        self.downlink = downlink_mod.Downlink(
            topic(""), receipts, self.session, self._config, self.verdicts.append, asyncio.Event()
        )

    def _config(self, msg: dict[str, Any]) -> tuple[bool, None]:
        self.configs.append(msg)
        return True, None

    def deliver(self, kind: str, payload: bytes) -> None:
        self.downlink.on_message(topic(kind), payload, False)

    def status(self) -> protocol.Status:
        got = protocol.parse(PREFIX, topic("status"), self.session.status())
        assert isinstance(got, protocol.Status)
        return got


def signed(kind: str, body: dict[str, Any], ctr: int, key: str = KEY, node: str = NODE) -> bytes:
    return sign(key, topic(kind, node), json.dumps(body, separators=(",", ":")).encode(), ctr)


RECEIPT = {"v": 1, "seqs": [0, 1, 2, 3, 4]}
CONFIG = {"v": 1, "id": "evil", "threshold_c": 38.5, "mode": "forehead"}


@pytest.mark.parametrize(
    "forgery",
    [
        json.dumps(RECEIPT).encode(),  # unsigned (protocol v1)
        signed("receipt", RECEIPT, NOW, key=OTHER_KEY),  # another node's (or a guessed) key
        signed("receipt", RECEIPT, NOW, node="lane-2"),  # right key, made for another topic
        signed("receipt", RECEIPT, NOW)[:-5] + b'0000"}',  # a MAC changed
        signed("receipt", {"v": 1, "seqs": [0]}, NOW).replace(b"[0]", b"[0,1,2,3,4]"),  # a body changed
    ],
    ids=["unsigned", "wrong-key", "other-topic", "bad-mac", "tampered"],
)
def test_a_forged_receipt_frees_nothing_and_is_reported(tmp_path: Path, forgery: bytes) -> None:
    node = Node(tmp_path, 5)
    node.deliver("receipt", forgery)
    assert node.outbox.depth == 5 and node.counts["receipted"] == 0
    status = node.status()  # what the gateway reads from the node's next status
    assert status.auth_refused == 1 and status.auth_error in ("receipt: unsigned", "receipt: bad_signature")
    node.deliver("receipt", signed("receipt", RECEIPT, NOW))  # the gateway's own is acted on
    assert node.outbox.depth == 0


def test_a_forged_config_is_refused_and_reported(tmp_path: Path) -> None:
    node = Node(tmp_path)
    for forgery in (json.dumps(CONFIG).encode(), signed("config", CONFIG, NOW, key=OTHER_KEY)):
        node.deliver("config", forgery)
    assert node.configs == [] and node.downlink.status_due
    status = node.status()
    assert status.auth_refused == 2 and status.auth_error is not None and status.auth_error.startswith("config: ")
    assert status.config_id == "cfg-1"  # the node still runs its own config


def test_forged_verdicts_are_not_shown(tmp_path: Path) -> None:
    node = Node(tmp_path)
    verdict = {"v": 1, "seq": 0, "verdict": "normal", "t_core_c": 36.6, "flags": [], "cal": "c", "threshold_c": 37.5,
               "alert_id": None}  # fmt: skip
    node.deliver("verdict", json.dumps(verdict).encode())
    node.deliver("verdict", signed("verdict", verdict, NOW, key=OTHER_KEY))
    assert node.verdicts == []
    node.deliver("verdict", signed("verdict", verdict, NOW))
    assert node.verdicts == [verdict]


def test_an_old_config_replayed_is_refused_even_after_a_reboot(tmp_path: Path) -> None:
    old = signed("config", dict(CONFIG, id="cfg-a", threshold_c=38.5), NOW)
    new = signed("config", dict(CONFIG, id="cfg-b", threshold_c=37.5), NOW + 60_000)
    node = Node(tmp_path)
    node.deliver("config", old)
    node.deliver("config", new)
    assert [c["id"] for c in node.configs] == ["cfg-a", "cfg-b"]
    node.deliver("config", old)  # the attacker recorded it
    assert [c["id"] for c in node.configs] == ["cfg-a", "cfg-b"] and node.status().auth_error == "config: replay"
    rebooted = Node(tmp_path)  # the counters are on flash
    rebooted.deliver("config", new)  # the retained copy at the connect: ignored quietly, not a refusal
    rebooted.deliver("config", old)
    assert rebooted.configs == [] and rebooted.status().auth_error == "config: replay"
    assert rebooted.session.auth_refused == 1


def test_receipts_and_verdicts_must_carry_a_rising_counter(tmp_path: Path) -> None:
    node = Node(tmp_path, 3)
    first = signed("receipt", {"v": 1, "seqs": [0]}, NOW)
    node.deliver("receipt", first)
    node.deliver("receipt", signed("receipt", {"v": 1, "seqs": [1]}, NOW + 5))
    node.deliver("receipt", first)  # replayed: older than the last accepted
    node.deliver("receipt", signed("receipt", {"v": 1, "seqs": [2]}, NOW + 5))  # same counter again: ignored
    assert node.outbox.depth == 1 and node.counts["receipted"] == 2
    assert node.session.auth_refused == 1 and node.session.auth_error == "receipt: replay"
    node.deliver("receipt", sign(KEY, topic("receipt"), b'{"v":1,"seqs":[2]}', NOW + 6).replace(b',"ctr":', b',"c":'))
    assert node.outbox.depth == 1  # a counter taken out breaks the MAC


def test_the_gateway_signs_each_node_with_its_own_key_and_a_rising_counter() -> None:
    reg = Registry({(SITE, NODE): NodeEntry(SITE, NODE, KEY, "u", 0), (SITE, "lane-2"): NodeEntry(SITE, "lane-2",
                   OTHER_KEY, "u2", 0)})  # fmt: skip
    signer = Signer(reg, PREFIX, lambda: NOW)
    a = [signer.seal(Outgoing(topic("receipt"), b'{"v":1,"seqs":[1]}')) for _ in range(3)]
    ctrs = [json.loads(o.payload)["ctr"] for o in a]
    assert ctrs == [NOW, NOW + 1, NOW + 2]
    assert all(auth.verify(bytes.fromhex(KEY), o.topic, o.payload) is None for o in a)
    b = signer.seal(Outgoing(topic("verdict", "lane-2"), b'{"v":1}'))
    assert auth.verify(bytes.fromhex(OTHER_KEY), b.topic, b.payload) is None
    assert auth.verify(bytes.fromhex(KEY), b.topic, b.payload) == "bad_signature"
    alert = Outgoing(f"{PREFIX}/alerts/{SITE}", b'{"v":1}')
    unknown = Outgoing(topic("receipt", "lane-9"), b'{"v":1,"seqs":[]}')
    assert signer.seal(alert) is alert and signer.seal(unknown) is unknown


# RFC 4231 test cases 1, 2, 6 and 7 (a key longer than the block), then random lengths around the block size.
RFC4231 = [
    ("0b" * 20, b"Hi There".hex()),
    (b"Jefe".hex(), b"what do ya want for nothing?".hex()),
    ("aa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First".hex()),
    ("aa" * 131, b"This is a test using a larger than block-size key and a larger than block-size data. The key needs "
     b"to be hashed before being used by the HMAC algorithm.".hex()),
]  # fmt: skip


def vectors() -> list[tuple[str, str]]:
    rng = random.Random(11)
    out = list(RFC4231)
    for n in (0, 1, 32, 63, 64, 65, 100, 200):
        out.append((rng.randbytes(n).hex(), rng.randbytes(rng.randrange(0, 300)).hex()))
    return out


@pytest.mark.parametrize("interpreter", ["micropython", "cpython"])
def test_hmac_is_rfc_2104_on_both_interpreters(tmp_path: Path, interpreter: str) -> None:
    vs = vectors()
    want = [hmac.new(bytes.fromhex(k), bytes.fromhex(m), hashlib.sha256).hexdigest() for k, m in vs]
    assert want[0] == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"  # RFC 4231 case 1
    f = tmp_path / "vectors.json"
    f.write_text(json.dumps(vs))
    prog = [str(Path(__file__).parent / "mp" / "hmac_vectors.py"), str(firmware.DIR), str(f)]
    r = subprocess.run([*interpreters()[interpreter], *prog], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == want

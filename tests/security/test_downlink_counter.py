"""The gateway's downlink counter never goes back (gateway/signing.py): max(wall ms, last + 1), its ceiling
stored ahead in the store. A gateway clock stepped back, within a run or across a restart, does not make the
node refuse its receipts as replays: the node's own Guard (firmware/auth.py) judges every receipt here."""

from __future__ import annotations

import json
from pathlib import Path

import firmware
from gateway.ingest import Outgoing
from gateway.signing import CEILING_AHEAD_MS, NodeEntry, Registry, Signer, new_key, stored_signer
from gateway.store import open_store
from testkit.gateway import FakeClock
from testkit.node import scan_payload
from testkit.service import ServiceLoop

auth = firmware.module("auth")
SITE, NODE = "bridge-1", "lane-1"
KEY = new_key()
HOUR = 3_600_000


def registry() -> Registry:
    return Registry({(SITE, NODE): NodeEntry(SITE, NODE, KEY, f"{SITE}.{NODE}", 0)})


def receipt() -> Outgoing:
    return Outgoing(f"checkpoint/v1/{SITE}/{NODE}/receipt", b'{"v":1,"seqs":[1]}')


def ctr(out: Outgoing) -> int:
    return int(json.loads(out.payload)["ctr"])


def test_the_counter_rises_when_the_clock_is_stepped_back() -> None:
    clock = FakeClock()
    stored: list[int] = []
    signer = Signer(registry(), "checkpoint/v1", clock, 0, stored.append)
    a = ctr(signer.seal(receipt()))
    clock.step(-HOUR)
    b, c = ctr(signer.seal(receipt())), ctr(signer.seal(receipt()))
    assert a == clock() + HOUR and b == a + 1 and c == a + 2
    assert stored == [a + CEILING_AHEAD_MS]  # one write for the whole run: the ceiling was ahead
    clock.step(HOUR + 20_000)  # the clock passes the ceiling: the counter follows it, and stores a new one
    assert ctr(signer.seal(receipt())) == clock() and stored[-1] == clock() + CEILING_AHEAD_MS


def test_a_restarted_gateway_with_its_clock_an_hour_back_is_still_accepted_by_the_node(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    registry().save(path)
    store = open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    guard = auth.Guard(KEY, str(tmp_path / "node.ctr"))  # the node's counters, as the firmware keeps them
    clock = FakeClock()
    accepted = []
    for run, seqs in enumerate((range(1, 4), range(4, 7))):
        if run == 1:
            clock.step(-HOUR)  # the gateway's clock set back while it was stopped
        loop = ServiceLoop(store, clock, gateway__registry=str(path)).start()
        for seq in seqs:
            loop.send(NODE, "scan", scan_payload(SITE, NODE, seq), site=SITE)
        loop.stop()
        for s in loop.transport.published("/receipt"):
            assert s.out is not None
            why = guard.signed(s.out.topic, s.out.payload) or guard.fresh("receipt", json.loads(s.out.payload))
            accepted.append((ctr(s.out), why))
    assert [why for _, why in accepted] == [None] * 6, accepted
    ctrs = [c for c, _ in accepted]
    assert ctrs == sorted(ctrs) and len(set(ctrs)) == 6 and ctrs[3] > ctrs[2]
    assert store.counter("gateway-1") >= ctrs[-1]
    again = stored_signer(registry(), "checkpoint/v1", "gateway-1", store, clock)
    assert ctr(again.seal(receipt())) > ctrs[-1]
    store.close()

"""Issue 11 items 3-5 at the broker itself, on deploy/mosquitto/production.conf with the passwd and ACL written by
`checkpoint-gateway provision` and a test CA (testkit/production.py), every client over TLS:

- the packet cap (`max_packet_size 8192`): a node's account sending a 60 KB site level, or a 10 KB payload on
  its own scan topic (which the ACL allows), is disconnected and nothing reaches the gateway;
- the gateway's persistent session, while the gateway is away, survives a node asking for the id "gateway"
  with a clean session: 10 of 10 queued scans are delivered when it comes back (the issue: 10 of 10 vanished);
- a node asking for another node's id does not kick it off, so its will (status offline) never fires;
- rotation and retirement reach the broker: after the reload the old password and the retired user are refused,
  the rotated node's new one accepted, and medics still read alerts though neither run gave `--reader`.

The broker launcher's extra plain listener (127.0.0.1, no `use_username_as_clientid`: not in production) is the
control: there the same client id attacks succeed, so the tests would see them. Nothing here waits to show an
absence: a forbidden message would arrive before the marker published after it (one broker thread, in order).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.production import Deployment, connect, node, provisioned

P = "checkpoint/v1"
NODES = ["bridge-1/lane-1", "bridge-1/lane-2", "river/lane-1"]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, int]]:
    d = provisioned(tmp_path_factory.mktemp("prod"), NODES)
    with d.broker() as b:
        yield d, b.port


def test_a_node_account_cannot_push_a_packet_over_the_cap(deployment: tuple[Deployment, int]) -> None:
    d, _ = deployment
    gw = connect(d, "gateway", d.gateway_password(), "gateway-bounds")
    gw.subscribe(f"{P}/#")
    for topic, payload in ((f"{P}/{'x' * 60_000}/lane-1/scan", b'{"v":1}'),  # the 60 KB site level
                           (f"{P}/bridge-1/lane-1/scan", b'{"v":1,"pad":"' + b"x" * 10_000 + b'"}')):  # fmt: skip
        n = node(d, "bridge-1", "lane-1")
        assert n.rc == 0
        n.c.publish(topic, payload, qos=1)
        assert n.gone.wait(10), "the broker took a packet over max_packet_size"
        n.close()
    n = node(d, "bridge-1", "lane-1")
    n.publish(f"{P}/bridge-1/lane-1/scan", b'{"v":1,"marker":1}')
    assert gw.payloads(until=b'{"v":1,"marker":1}') == [b'{"v":1,"marker":1}']
    for c in (n, gw):
        c.close()


def queued_scans_after_a_takeover(d: Deployment, plain_port: int | None) -> tuple[bool, list[bytes]]:
    """The gateway subscribes with a persistent session and goes away; a node queues 10 scans, then a node asks
    for the id "gateway" with a clean session (over TLS, or over the plain control listener); the gateway comes
    back: whether its session was there, and what it got up to a marker."""
    gw = connect(d, "gateway", d.gateway_password(), "gateway", clean=False)
    gw.subscribe(f"{P}/#")
    gw.close()
    n = node(d, "bridge-1", "lane-2")
    scans = [b'{"v":1,"seq":%d}' % i for i in range(10)]
    for s in scans:
        n.publish(f"{P}/bridge-1/lane-2/scan", s)
    thief = node(d, "bridge-1", "lane-1", "gateway", plain_port=plain_port)
    assert thief.rc == 0
    thief.close()
    back = connect(d, "gateway", d.gateway_password(), "gateway", clean=False)
    back.subscribe(f"{P}/#")  # again: without its old session the gateway starts from here
    n.publish(f"{P}/bridge-1/lane-2/scan", b'{"v":1,"marker":2}')
    got = back.payloads(until=b'{"v":1,"marker":2}')
    for c in (n, back):
        c.close()
    return back.present, got[:-1]


def test_the_gateways_queued_scans_survive_a_node_taking_its_id(deployment: tuple[Deployment, int]) -> None:
    d, plain = deployment
    present, got = queued_scans_after_a_takeover(d, None)
    assert present and got == [b'{"v":1,"seq":%d}' % i for i in range(10)]  # 10 of 10
    present, got = queued_scans_after_a_takeover(d, plain)  # the control: a listener without the binding
    assert not present and got == []  # what the issue measured: the session and its 10 scans gone


def takeover_fires_the_will(d: Deployment, plain_port: int | None) -> bool:
    gw = connect(d, "gateway", d.gateway_password(), "gateway-will")
    gw.subscribe(f"{P}/river/lane-1/#")
    will = (f"{P}/river/lane-1/status", b'{"v":1,"state":"offline"}')
    victim = node(d, "river", "lane-1", "river.lane-1", will=will)
    victim.c.reconnect_delay_set(120, 120)  # a kicked victim stays away until the marker is in
    thief = node(d, "bridge-1", "lane-2", "river.lane-1", plain_port=plain_port)  # the victim's id
    thief.close()
    gw.publish(f"{P}/river/lane-1/scan", b'{"v":1,"marker":3}')  # a will fired at the thief's CONNECT is ahead
    got = gw.payloads(until=b'{"v":1,"marker":3}')
    fired = will[1] in got
    assert victim.gone.wait(10) if fired else not victim.gone.is_set()  # the will fires only for a kicked victim
    for c in (victim, gw):
        c.close()
    return fired


def test_a_node_taking_another_nodes_id_fires_no_will(deployment: tuple[Deployment, int]) -> None:
    d, plain = deployment
    assert not takeover_fires_the_will(d, None)
    assert takeover_fires_the_will(d, plain)  # the control: a listener without the binding


def test_rotation_and_retirement_without_readers_keep_the_medics(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """provision with a reader, then rotate one node and retire another in runs that give no --reader (the
    auditor's case: before, the ACL lost the reader block and the medic lost alerts after the reload)."""
    d = provisioned(tmp_path_factory.mktemp("rotate"), ["bridge-1/lane-1", "bridge-1/lane-2"], readers=("medic",))
    d.set_password("medic", "medic-pass")  # docs/security.md: in the passwd under --dir
    old, retired = d.node_password("bridge-1", "lane-1"), d.node_password("bridge-1", "lane-2")
    with d.broker() as b:
        for user, password in (("bridge-1.lane-1", old), ("bridge-1.lane-2", retired)):
            before = connect(d, user, password)
            assert before.rc == 0
            before.close()
        capsys.readouterr()
        d.provision(rotate=["bridge-1/lane-1"])
        d.provision(retire=["bridge-1/lane-2"])
        said = capsys.readouterr().out
        assert said.count("provision: readers in the ACL: medic\n") == 2 and "added" not in said
        b.stop()  # the operator's reload (SIGHUP): the broker reads passwd and ACL again
        b.start()
        assert connect(d, "bridge-1.lane-1", old).rc != 0
        assert connect(d, "bridge-1.lane-2", retired).rc != 0
        rotated, medic = node(d, "bridge-1", "lane-1"), connect(d, "medic", "medic-pass")
        assert rotated.rc == 0 and medic.rc == 0
        medic.subscribe(f"{P}/alerts/#")
        gw = connect(d, "gateway", d.gateway_password())
        gw.publish(f"{P}/alerts/bridge-1", b'{"v":1,"marker":4}')
        assert medic.payloads(until=b'{"v":1,"marker":4}') == [b'{"v":1,"marker":4}']
        for c in (rotated, medic, gw):
            c.close()

"""firmware/mqtt.py and packet.py: exact bytes on the wire (as micropython-lib's test_umqtt_simple), then
behaviour against a real Mosquitto: keepalive, dead-link detection, QoS 1 resend after reconnect, last will,
timeouts."""

from __future__ import annotations

import asyncio
import errno
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firmware import DIR as FIRMWARE_DIR
from firmware import module as firmware_module
from sim.broker import Broker, free_port
from testkit.micropython import interpreters

ROOT = Path(__file__).resolve().parents[2]

clockmod = firmware_module("clock")
mqtt = firmware_module("mqtt")
packet = firmware_module("packet")

INTERPRETERS = interpreters()


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, "00"),
        (127, "7f"),
        (128, "8001"),
        (16383, "ff7f"),
        (16384, "808001"),
        (2097151, "ffff7f"),
        (2097152, "80808001"),
        (268435455, "ffffff7f"),
    ],
)
def test_remaining_length_varint(n: int, encoded: str) -> None:
    assert packet.remaining_length(n) == bytes.fromhex(encoded)


def test_remaining_length_out_of_range() -> None:
    with pytest.raises(ValueError):
        packet.remaining_length(268435456)


def test_connect_minimal() -> None:
    # 3.1: protocol name "MQTT", level 4, flags 0x02 (clean session), keepalive 60, client id "c1"
    assert packet.connect_packet("c1") == bytes.fromhex("100e 00044d515454 04 02 003c 0002 6331")


def test_connect_with_will_user_password() -> None:
    pkt = packet.connect_packet("node-a", False, 300, ("s/t", b'{"v":1}', 1, True), "u", "p")
    # flags: user 0x80 | password 0x40 | will retain 0x20 | will QoS 1 0x08 | will 0x04; no clean session
    want = bytes.fromhex("10 26 00044d515454 04 ec 012c 0006") + b"node-a"  # 38 = 10 + 8 + 5 + 9 + 3 + 3
    want += b"\x00\x03s/t" + b'\x00\x07{"v":1}' + b"\x00\x01u" + b"\x00\x01p"
    assert pkt == want


def test_publish_qos0_qos1_dup_retain() -> None:
    assert packet.publish_packet("a/b", b"hi") == bytes.fromhex("3007 0003612f62 6869")
    assert packet.publish_packet("a/b", b"hi", 1, False, 0x1234) == bytes.fromhex("3209 0003612f62 1234 6869")
    big = packet.publish_packet("a/b", b"x" * 200, 1, True, 7, dup=True)
    assert big[:10] == bytes.fromhex("3bcf01 0003612f62 0007") and len(big) == 3 + 207  # dup|qos1|retain


def test_subscribe_puback_ping_disconnect() -> None:
    sub = packet.subscribe_packet(10, "a/b", 1)
    assert sub == bytes.fromhex("8208 000a 0003612f62 01")
    assert packet.puback_packet(0xBEEF) == bytes.fromhex("4002beef")
    assert (packet.PINGREQ, packet.DISCONNECT) == (b"\xc0\x00", b"\xe0\x00")


def test_parse_publish() -> None:
    pkt = packet.publish_packet("checkpoint/v1/s/n/receipt", b'{"v":1,"seqs":[3]}', 1, True, 513)
    body = pkt[2:]
    assert packet.parse_publish(pkt[0], body) == (
        "checkpoint/v1/s/n/receipt",
        b'{"v":1,"seqs":[3]}',
        1,
        True,
        513,
    )
    q0 = packet.publish_packet("t", b"", 0)
    assert packet.parse_publish(q0[0], q0[2:]) == ("t", b"", 0, False, 0)


def test_micropython_encodes_the_same_bytes() -> None:
    prog = [str(ROOT / "tests/firmware/mp/net_mqtt_codec.py"), str(FIRMWARE_DIR)]
    mp = subprocess.run(INTERPRETERS["micropython"] + prog, capture_output=True, text=True, timeout=30)
    cp = subprocess.run([sys.executable, *prog], capture_output=True, text=True, timeout=30)
    assert mp.returncode == 0, mp.stderr
    assert mp.stdout == cp.stdout and len(mp.stdout.splitlines()) == 15


@pytest.mark.parametrize("interpreter", ["micropython", "cpython"])
def test_client_round_trip_against_mosquitto(broker: Broker, interpreter: str) -> None:
    """Connection refused, subscribe, QoS 0/1 to itself, PUBACK tracking, pings keep it alive, clean close."""
    prog = [
        str(ROOT / "tests/firmware/mp/net_mqtt_live.py"),
        str(FIRMWARE_DIR),
        str(broker.port),
        str(free_port()),
        f"t/live-{interpreter}",
    ]
    r = subprocess.run(
        INTERPRETERS[interpreter] + prog, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert r.returncode == 0, r.stderr
    import json

    out = json.loads(r.stdout)
    assert out["closed_port"] == "OSError 111"
    assert out["granted"] == 1 and out["inflight_after_publish"] and out["acked"] and out["received"]
    assert sorted(m[0] for m in out["messages"]) == [f"t/live-{interpreter}/in/{t}" for t in ("big", "q0", "q1")]
    assert out["kept_alive"] and out["downs"] == [] and not out["connected_after_disconnect"]


class Observer:
    """A paho client that collects messages on one topic filter."""

    def __init__(self, port: int, topic: str) -> None:
        self.got: queue.Queue[paho.MQTTMessage] = queue.Queue()
        ready = threading.Event()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id="obs-" + topic.replace("/", "-"))
        self.c.on_message = lambda c, u, m: self.got.put(m)
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.c.subscribe(topic, qos=1)
        assert ready.wait(5)

    def next(self, timeout: float = 10) -> paho.MQTTMessage:
        return self.got.get(timeout=timeout)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def client(port: int, cid: str, **kw: Any) -> mqtt.Client:
    return mqtt.Client(clockmod.Clock(), cid, "127.0.0.1", port, **kw)


def test_last_will_on_a_dropped_connection_not_on_a_clean_disconnect(broker: Broker) -> None:
    obs = Observer(broker.port, "t/will/#")

    async def main() -> None:
        a = client(broker.port, "will-a", will=("t/will/a", b"offline", 1, False))
        await a.connect()
        a.close("power cut")  # the socket goes without a DISCONNECT
        b = client(broker.port, "will-b", will=("t/will/b", b"offline", 1, False))
        await b.connect()
        await b.disconnect()
        c = client(broker.port, "will-c")
        await c.connect()
        await c.publish("t/will/c", b"marker", qos=1)
        assert await c.wait_acked(5000)
        await c.disconnect()

    try:
        asyncio.run(main())
        got = [(m.topic, m.payload) for m in (obs.next(), obs.next())]
    finally:
        obs.close()
    assert got == [("t/will/a", b"offline"), ("t/will/c", b"marker")]  # no will from the clean disconnect


def test_frozen_broker_is_detected_by_missing_pingresp(private_broker: Broker) -> None:
    downs: list[str] = []

    async def main() -> None:
        gone = asyncio.Event()
        c = client(private_broker.port, "ka", keepalive_s=1, on_down=lambda r: (downs.append(r), gone.set()))
        await c.connect()
        assert private_broker.proc is not None
        private_broker.proc.send_signal(signal.SIGSTOP)  # TCP stays open, nothing answers
        try:
            await asyncio.wait_for(gone.wait(), 10)
        finally:
            private_broker.proc.send_signal(signal.SIGCONT)
        assert not c.connected

    asyncio.run(main())
    assert len(downs) == 1 and "PINGRESP" in downs[0]


def test_unacknowledged_qos1_is_resent_after_reconnect(private_broker: Broker) -> None:
    obs = Observer(private_broker.port, "t/dup")

    async def main() -> None:
        c = client(private_broker.port, "dup", clean_session=False, timeout_ms=3000)
        await c.connect()
        assert private_broker.proc is not None
        private_broker.proc.send_signal(signal.SIGSTOP)
        try:
            pid = await c.publish("t/dup", b"scan 17", qos=1)
            assert not await c.wait_acked(300)  # the broker is frozen: no PUBACK
            c.close("link lost")
        finally:
            private_broker.proc.send_signal(signal.SIGCONT)
        assert pid in c.inflight
        await c.connect()  # resends with DUP, same packet id
        assert await c.wait_acked(5000) and not c.inflight
        await c.disconnect()

    try:
        asyncio.run(main())
        assert obs.next().payload == b"scan 17"
    finally:
        obs.close()


def test_connect_timeout_comes_from_the_clock_and_never_blocks_the_loop() -> None:
    """A server that accepts TCP but never answers CONNACK: connect() gives up after timeout_ms while other
    tasks keep running."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]

        async def main() -> int:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            t = asyncio.create_task(ticker())
            c = client(port, "silent", timeout_ms=300)
            with pytest.raises(OSError) as e:
                await c.connect()
            t.cancel()
            assert e.value.errno == errno.ETIMEDOUT and not c.connected
            return ticks

        assert asyncio.run(main()) > 5


def test_refused_connection_is_an_mqtt_error(broker: Broker) -> None:
    async def main() -> None:
        c = client(broker.port, "", clean_session=False)  # 3.1.3.1: empty id needs a clean session
        with pytest.raises(mqtt.MQTTError, match="client id rejected"):
            await c.connect()

    asyncio.run(main())


def test_oversize_message_is_skipped_and_the_session_survives(broker: Broker) -> None:
    got: list[tuple[str, bytes, bool]] = []

    async def main() -> None:
        small_arrived = asyncio.Event()

        def on_message(topic: str, payload: bytes, retained: bool) -> None:
            got.append((topic, payload, retained))
            if topic == "t/size/small":
                small_arrived.set()

        c = client(broker.port, "small", max_packet=512, on_message=on_message)
        await c.connect()
        pub = client(broker.port, "big-pub")
        await pub.connect()
        await pub.publish("t/size/cfg", b"r" * 100, qos=1, retain=True)
        await pub.publish("t/size/big", b"x" * 5000, qos=1)
        assert await pub.wait_acked(5000)
        await c.subscribe("t/size/#", 1)
        await pub.publish("t/size/big", b"y" * 5000, qos=1)
        await pub.publish("t/size/small", b"ok", qos=1)
        await asyncio.wait_for(small_arrived.wait(), 5)  # the message after the oversize one still arrives
        assert c.connected
        await c.disconnect()
        await pub.publish("t/size/cfg", b"", qos=1, retain=True)  # clear the retained message
        await pub.wait_acked(5000)
        await pub.disconnect()

    asyncio.run(main())
    assert got == [("t/size/cfg", b"r" * 100, True), ("t/size/small", b"ok", False)]

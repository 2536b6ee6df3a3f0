"""A node for tests and benchmarks that publishes what it is told: protocol-v1 scans, collects receipts, resends
what has none.

A `NodePublisher` behaves like the firmware's uplink: a persistent session, a retained status with a last
will, scans at QoS 1 with seqs, receipts free them, and scans without a receipt are sent again (after a
reconnect, or when receipts stop coming); `publish_raw` sends anything (garbage) under its identity.
`python -m testkit.node --port P --site S --node N` runs one such node as a process, so a test can SIGKILL it
and watch its last will.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import firmware

contract: Any = firmware.module("contract")  # untyped MicroPython module
SCAN_FIELDS: tuple[str, ...] = contract.names(contract.SCAN)
OPTIONAL = {f[0] for f in contract.SCAN if f[4] == contract.OPT}  # absent from a payload when null


def scan_payload(site: str, node: str, seq: int, **fields: Any) -> dict[str, Any]:
    """A valid scan with every field of the contract's SCAN table, in its order (a normal forehead reading
    unless `fields` say otherwise; `fields` may also add names the contract does not have)."""
    sample: dict[str, Any] = {
        "v": contract.VERSION,
        "site": site,
        "node": node,
        "seq": seq,
        "boot": 1,
        "ts": 1_767_225_600_000 + seq * 1000,  # 2026-01-01T00:00:00Z + seq seconds
        "uptime_ms": 60_000 + seq * 1000,
        "mode": contract.MODES[0],
        "t_site_c": 34.0,
        "t_amb_c": 24.0,
        "t_core_c": 36.5,
        "verdict": contract.VERDICTS[0],
        "flags": [],
        "samples": 12,
        "duration_ms": 900,
        "retest_of": None,
        "code": None,
        "retest_code": None,
        "wait_s": None,
        "ref_gain": None,
        "ref_offset_c": None,
        "unit": None,  # a scan without one: firmware before record layout 4
        "fw": "test-1",
        "cal": "placeholder-0",
    }
    missing = [name for name in SCAN_FIELDS if name not in sample]
    if missing:
        raise KeyError(f"scan_payload has no sample value for the contract's scan fields {missing}")
    scan = {name: sample[name] for name in SCAN_FIELDS if sample[name] is not None or name not in OPTIONAL}
    scan.update(fields)
    return scan


class NodePublisher:
    """One simulated node on a paho client (see the module docstring). Thread-safe to read."""

    def __init__(
        self,
        port: int,
        site: str,
        node: str,
        host: str = "127.0.0.1",
        prefix: str = contract.PREFIX,
        *,
        ports: list[int] | None = None,
        auth: tuple[str, str] | None = None,
    ):
        """`ports`: the brokers (cluster members) to move through when the connection is lost, `port` first,
        as the firmware's broker list does; `auth`: (username, password)."""
        self.site, self.node, self.host, self.port = site, node, host, port
        self.ports = [port] + [p for p in ports or [] if p != port]
        self.auth = auth
        self.moves = 0  # times it moved to the next broker
        self.topic = f"{prefix}/{site}/{node}"
        self._cond = threading.Condition()
        self.outstanding: dict[int, bytes] = {}  # seq -> payload, until a receipt names it
        self.receipted: set[int] = set()
        self.rejected: set[int] = set()
        self.receipts: list[dict[str, Any]] = []
        self.verdicts: list[dict[str, Any]] = []
        self.resends = 0
        self._subscribed = threading.Event()
        self._client: Any = None

    def connect(self, timeout: float = 10.0) -> NodePublisher:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{self.site}-{self.node}", clean_session=False)
        c.max_inflight_messages_set(100)
        c.max_queued_messages_set(0)
        c.will_set(self.topic + "/status", json.dumps({"v": 1, "state": "offline"}), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.on_message = self._on_message
        c.on_disconnect = self._on_disconnect
        c.on_connect_fail = lambda client, userdata: self._next_broker(client)
        if self.auth:
            c.username_pw_set(*self.auth)
        c.reconnect_delay_set(1, 2)
        c.connect(self.host, self.port, keepalive=30)
        c.loop_start()
        self._client = c
        if not self._subscribed.wait(timeout):
            raise TimeoutError(f"{self.site}/{self.node}: no SUBACK from the broker in {timeout} s")
        return self

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        client.subscribe([(self.topic + "/receipt", 1), (self.topic + "/verdict", 1)])
        status = {"v": 1, "state": "online", "fw": "test-1", "boot": 1, "config_id": "test"}
        client.publish(self.topic + "/status", json.dumps(status), qos=1, retain=True)
        if flags.session_present is False and self.outstanding:
            self.resend()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        """Lost (not closed by us): the next broker of `ports`; paho's loop reconnects to it."""
        if reason.is_failure:
            self._next_broker(client)

    def _next_broker(self, client: Any) -> None:
        if len(self.ports) > 1 and self._client is not None:
            self.port = self.ports[(self.ports.index(self.port) + 1) % len(self.ports)]
            self.moves += 1
            client.connect_async(self.host, self.port, keepalive=30)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        body = json.loads(msg.payload)
        with self._cond:
            if msg.topic.endswith("/receipt"):
                self.receipts.append(body)
                for seq in body.get("seqs", []) + body.get("rejected", []):
                    self.outstanding.pop(seq, None)
                self.receipted.update(body.get("seqs", []))
                self.rejected.update(body.get("rejected", []))
            else:
                self.verdicts.append(body)
            self._cond.notify_all()

    def send(self, scans: Iterable[dict[str, Any]]) -> None:
        """Publish scans (QoS 1) and keep them until a receipt names them."""
        for scan in scans:
            payload = json.dumps(scan).encode()
            with self._cond:
                self.outstanding[scan["seq"]] = payload
            self._client.publish(self.topic + "/scan", payload, qos=1)

    def send_seqs(self, seqs: Iterable[int], **fields: Any) -> None:
        self.send(scan_payload(self.site, self.node, s, **fields) for s in seqs)

    def publish_raw(self, payload: bytes, kind: str = "scan", topic: str | None = None, qos: int = 1) -> None:
        """Publish anything, on this node's topic of `kind` or on `topic`."""
        self._client.publish(topic or f"{self.topic}/{kind}", payload, qos=qos).wait_for_publish(10)

    def resend(self) -> None:
        with self._cond:
            pending = sorted(self.outstanding.items())
            self.resends += len(pending)
        for _, payload in pending:
            self._client.publish(self.topic + "/scan", payload, qos=1)

    def wait_receipts(self, seqs: Iterable[int], timeout: float = 30.0, resend_after: float = 3.0) -> bool:
        """Wait for a receipt naming every seq; resend what has none when receipts stop (as nodes do)."""
        wanted = set(seqs)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                done = wanted <= (self.receipted | self.rejected)
                left = deadline - time.monotonic()
                if done or left <= 0:
                    return done
                before = len(self.receipts)
                self._cond.wait(min(left, resend_after))
                if len(self.receipts) == before and self.outstanding:
                    self._cond.release()
                    try:
                        self.resend()
                    finally:
                        self._cond.acquire()

    def wait_verdicts(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.verdicts) >= n, timeout)
            return list(self.verdicts)

    def close(self, clean: bool = True) -> None:
        """Disconnect; a clean close publishes "offline" itself (a DISCONNECT sends no will)."""
        if self._client is None:
            return
        if clean:
            info = self._client.publish(self.topic + "/status", json.dumps({"v": 1, "state": "offline"}), 1, True)
            info.wait_for_publish(5)
        self._client.disconnect()
        self._client.loop_stop()
        self._client = None


def main(argv: list[str] | None = None) -> int:
    """A node process that stays connected until killed (for last-will tests)."""
    p = argparse.ArgumentParser(prog="python -m testkit.node")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--site", required=True)
    p.add_argument("--node", required=True)
    args = p.parse_args(argv)
    NodePublisher(args.port, args.site, args.node).connect()
    print("ready", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

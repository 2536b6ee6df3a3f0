"""A node's uplink against one broker address with TLS, on MicroPython (or CPython), until its link is UP or
REFUSED (or the deadline): what the link LED would show, and why.

usage: micropython -X heapsize=112k tls_node.py FIRMWARE_DIR OPTS_FILE
OPTS_FILE: {"dir", "host", "port", "cafile", "user", "password", "node"}. Prints one JSON line:
{"states": [link states in order], "up": bool, "refused": reason or null, "errors": n}
"""

import json
import sys

sys.path.insert(0, sys.argv[1])
import asyncio

import clock as clockmod
import linkstate
import outbox
import uplink

with open(sys.argv[2]) as _f:
    OPTS = json.load(_f)


class Link:
    def isconnected(self):
        return True

    async def connect(self):
        return True

    def rssi(self):
        return -60

    def ntp_server(self):
        return None  # no time server: this run is about the broker's certificate

    def dns_server(self):
        return None  # the broker is given by address


async def main():
    clock = clockmod.Clock()
    box = outbox.Outbox(OPTS["dir"])
    box.open()
    broker = {"host": OPTS["host"], "port": OPTS["port"], "tls": True, "cafile": OPTS["cafile"]}
    broker.update({"user": OPTS["user"], "password": OPTS["password"], "keepalive_s": 30})
    cfg = {"broker": broker, "prefix": "checkpoint/v1", "health_interval_s": 60, "backoff_max_s": 1}
    identity = {"site": "bridge-1", "node": OPTS["node"], "fw": "0.1.0-test", "boot": 1, "config_id": "c0"}
    up = uplink.Uplink(cfg, identity, box, clock, Link(), lambda c: (True, None), lambda v: None, lambda: {})
    states = []
    done = asyncio.Event()

    def on_state(s):
        states.append(s)
        if s in (linkstate.UP, linkstate.REFUSED):
            done.set()

    up.link_state.listen(on_state)
    task = asyncio.create_task(up.run())
    try:  # noqa: SIM105 - MicroPython has no contextlib
        await asyncio.wait_for(done.wait(), OPTS.get("deadline_s", 20))
    except TimeoutError:
        pass
    out = {"states": list(states), "up": up.connected, "refused": up.session.refused, "errors": up.counts["errors"]}
    if up.connected:
        await up.stop()
    else:
        up.drop()
    await asyncio.wait_for(task, 10)
    print(json.dumps(out))


asyncio.run(main())

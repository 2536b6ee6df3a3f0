"""A minimal node for the uplink tests: outbox + uplink + an app loop that appends scans, on MicroPython (and
CPython), against a real Mosquitto. The Wi-Fi link is fake: up unless the file OPTS["linkdown"] exists.

usage: micropython -X heapsize=112k net_uplink_node.py FIRMWARE_DIR OPTS_FILE  (FIRMWARE_DIR: .py or .mpy)
(a file: the MicroPython unix port dies with "FATAL: uncaught NLR" on any argv element of 256 bytes or more)
OPTS_FILE holds a JSON object: dir, port, site, node, n (scans to append), interval_ms, linkdown (path),
deadline_ms, and optional cafile (then the broker port is a TLS listener whose certificate that CA signed),
receipt_timeout_s, host (the broker's name), ntp and dns (ports of UDP stubs on 127.0.0.1: sim/host/udp.py),
boot (7), fever (every scan febrile), backoff_max_s (1), run_ms (keep running until this long after the start,
even with the outbox empty: a run of a fixed length).
Prints to stdout, one event a line:
    rec SEQ PAYLOAD       a scan appended (PAYLOAD: the protocol-v1 JSON recorded for it)
    done STATS_JSON       every scan appended and receipted (outbox empty); after a clean stop()
    timeout STATS_JSON    the deadline passed first (exit status 2)
"""

import gc
import json
import os
import sys

sys.path.insert(0, sys.argv[1])
import asyncio

import clock as clockmod
import outbox
import record
import uplink

with open(sys.argv[2]) as _f:
    OPTS = json.load(_f)


def heap_free():
    gc.collect()
    return gc.mem_free() if hasattr(gc, "mem_free") else None


class FileLink:
    def __init__(self, flag):
        self.flag = flag

    def isconnected(self):
        try:
            os.stat(self.flag)
            return False
        except OSError:
            return True

    async def connect(self):
        return self.isconnected()

    def rssi(self):
        return -61 if self.isconnected() else None

    def ntp_server(self):
        return _addr(OPTS.get("ntp"))

    def dns_server(self):
        return _addr(OPTS.get("dns"))


def _addr(port):
    """A UDP stub of the test on 127.0.0.1 (sim/host/udp.py), or None."""
    return None if port is None else ("127.0.0.1", port)


def scan(i, clock):
    """A deterministic variety of scans: normal, elevated, cold ambient, sensor faults, retests (every scan
    febrile with OPTS["fever"])."""
    if OPTS.get("fever"):
        return dict(_scan(0, clock), t_site_c=39.0, t_amb_c=24.0, t_core_c=39.5, retest_of=None)
    return _scan(i, clock)


def _scan(i, clock):
    fault = i % 17 == 5
    t_site = None if fault else 34.0 + (i * 37 % 400) / 100
    t_amb = None if fault else (-3.5 if i % 13 == 4 else 21.25)
    verdict = "elevated" if i % 9 == 0 else "normal"
    verdict = "invalid" if fault else ("indeterminate" if i % 13 == 4 else verdict)
    flags = ["sensor_fault"] if fault else (["cold_ambient"] if i % 13 == 4 else [])
    return {
        "boot": OPTS.get("boot", 7),
        "ts": clock.unix_ms(),
        "uptime_ms": clock.ticks_ms(),
        "mode": "forehead",
        "t_site_c": t_site,
        "t_amb_c": t_amb,
        "t_core_c": None if fault else t_site + 0.9,
        "verdict": verdict,
        "flags": flags,
        "samples": 8 + i % 5,
        "duration_ms": 700 + i % 300,
        "retest_of": i - 1 if i % 11 == 10 else None,
        "fw": "0.1.0-test",
        "cal": "placeholder-0",
    }


async def main():
    clock = clockmod.Clock()
    box = outbox.Outbox(OPTS["dir"])
    box.open()
    broker = {"host": "127.0.0.1", "port": OPTS["port"], "tls": False, "user": None, "password": None}
    broker["keepalive_s"] = 5
    if "cafile" in OPTS:
        broker["tls"] = True
        broker["cafile"] = OPTS["cafile"]
    cfg = {
        "broker": broker,
        "prefix": "checkpoint/v1",
        "health_interval_s": 1,
        "backoff_max_s": OPTS.get("backoff_max_s", 1),
        "receipt_timeout_s": OPTS.get("receipt_timeout_s", 30),
    }
    if "host" in OPTS:
        broker["host"] = OPTS["host"]
    identity = {"site": OPTS["site"], "node": OPTS["node"], "fw": "0.1.0-test", "boot": OPTS.get("boot", 7)}
    identity["config_id"] = "c0"
    up = uplink.Uplink(
        cfg,
        identity,
        box,
        clock,
        FileLink(OPTS["linkdown"]),
        lambda c: (True, None),
        lambda v: print("verdict", json.dumps(v)),
        lambda: {"heap_free": heap_free()},
    )
    task = asyncio.create_task(up.run())
    t0 = clock.ticks_ms()
    for i in range(OPTS["n"]):
        made = scan(i, clock)
        b = record.pack(made)
        seq = box.append(b)
        print("rec", seq, record.to_payload(seq, b, OPTS["site"], OPTS["node"]).decode())
        up.kick(seq, made)
        await clock.sleep_ms(OPTS["interval_ms"])
    while box.depth and clock.ticks_diff(clock.ticks_ms(), t0) < OPTS["deadline_ms"]:
        await clock.sleep_ms(20)
    while clock.ticks_diff(clock.ticks_ms(), t0) < OPTS.get("run_ms", 0):
        await clock.sleep_ms(100)
    await up.stop()
    await task
    stats = {"depth": box.depth, "dropped": box.dropped, "counts": up.counts, "heap_free": heap_free()}
    print("done" if not box.depth else "timeout", json.dumps(stats))
    sys.exit(0 if not box.depth else 2)


asyncio.run(main())

"""The node's health message (contract.HEALTH, QoS 0, every intervals.health_s): figures for a person.

`boot_count()` keeps the boot counter on flash (boot.txt), `unit_id()` the unit's identity beside it (unit.txt):
every scan carries both.
`Health` keeps the node's own counters (scans recorded, outbox refusals) and its uptime; the uplink adds its
own figures (outbox depth and drops, rssi, its counters) and `payload()` makes the message. A figure the
contract refuses (a failing supply ADC reading 12 V) is left out, and the rest still goes out.
"""

import contract
import message
from version import FW


def boot_count(root):
    """This boot's number (1, 2, ...), persisted before it is returned (write a temporary file, rename)."""
    try:
        with open(root + "boot.txt") as f:
            n = int(f.read()) + 1
    except (OSError, ValueError):
        n = 1
    _keep(root + "boot.txt", n)
    return n


def unit_id(root, urandom):
    """This unit's identity, 1 .. 2**32-1: drawn from `urandom` (the board's: the ESP32's hardware RNG) at the
    first boot of its flash and kept beside the boot counter (unit.txt). Every scan carries it, so a spare unit
    with a fresh flash (boot 1 and seq 0 again, like the unit it replaces) never passes for that unit, even at
    the same uptime. An erased flash is a new unit, rightly: its seqs start again too."""
    try:
        with open(root + "unit.txt") as f:
            n = int(f.read())
        if 0 < n <= contract.ORIGIN_MAX:
            return n
    except (OSError, ValueError):
        pass
    n = 0
    while not n:
        n = int.from_bytes(urandom(4), "big")
    _keep(root + "unit.txt", n)
    return n


def _keep(path, n):
    """Write the number `n` to `path` whole or not at all (a temporary file, renamed over it)."""
    import os

    with open(path + ".tmp", "w") as f:
        f.write(str(n))
    os.rename(path + ".tmp", path)


class Health:
    def __init__(self, clock):
        self.clock = clock
        self.scans = 0
        self.outbox_errors = 0  # scans the outbox refused to store
        self._up = 0
        self._up_t = clock.ticks_ms()

    def uptime_ms(self):
        """ms since boot, wrap-safe however long the node runs (ticks wrap on the ESP32)."""
        now = self.clock.ticks_ms()
        self._up += self.clock.ticks_diff(now, self._up_t)
        self._up_t = now
        return self._up

    def figures(self, sensor_errors, supply_v, restarts, heap_free):
        return {
            "uptime_ms": self.uptime_ms(),
            "heap_free": heap_free,
            "sensor_errors": sensor_errors,
            "supply_v": supply_v,
            "fw": FW,
            "scans": self.scans,
            "task_restarts": restarts,
            "outbox_errors": self.outbox_errors,
        }


def payload(node_figures, own, problems):
    """The health message's JSON bytes: `node_figures()` (the node's, optional: a failure is a problem) and
    `own` (name -> value). A figure the contract refuses is left out and its problem appended to `problems`."""
    h = {}
    try:
        h = dict(node_figures())
    except Exception as e:  # the node's figures are optional; the uplink's still go out
        problems.append("node figures: " + repr(e))
    h.update(own)
    h["v"] = contract.VERSION
    while True:
        try:
            return message.encode(contract.HEALTH, h)
        except ValueError as e:
            problems.append("left out " + str(e))
            if h.pop(str(e).split(":")[-1], None) is None:
                raise

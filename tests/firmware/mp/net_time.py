"""The firmware's NTP and DNS clients (firmware/udp.py) under MicroPython against the test's UDP stubs, with a
ticker task standing in for the scan loop: its longest gap shows whether a network exchange held the loop.

usage: micropython net_time.py FIRMWARE_DIR OPTS_FILE
OPTS_FILE: {"ntp": [port, ...] (one sync attempt per port, in order), "dns": port, "names": [name, ...]}
Prints one line per step:
    ntp I UNIX_MS_OR_None REFUSED_COUNT GAP_MS
    dns NAME ADDRESS_OR_error GAP_MS
"""

import json
import sys

sys.path.insert(0, sys.argv[1])
import asyncio

import clock as clockmod
import udp

with open(sys.argv[2]) as _f:
    OPTS = json.load(_f)


class Link:
    def __init__(self):
        self.ntp = None

    def ntp_server(self):
        return ("127.0.0.1", self.ntp)

    def dns_server(self):
        return ("127.0.0.1", OPTS["dns"])


class Ticker:
    """Wakes every 20 ms of the clock, as the scan loop does; `gap` is the longest time between two wakes."""

    def __init__(self, clock):
        self.clock = clock
        self.gap = 0

    async def run(self):
        last = self.clock.ticks_ms()
        while True:
            await self.clock.sleep_ms(20)
            now = self.clock.ticks_ms()
            self.gap = max(self.gap, self.clock.ticks_diff(now, last))
            last = now


async def main():
    clock = clockmod.Clock()
    link = Link()
    counts = {}
    resolver = udp.Resolver(clock, link)
    sync = udp.TimeSync(clock, link, resolver, counts, 3600000)
    ticker = Ticker(clock)
    t = asyncio.create_task(ticker.run())
    for i, port in enumerate(OPTS["ntp"]):
        link.ntp = port
        ticker.gap = 0
        sync.soon()
        await sync.run()
        print("ntp", i, clock.unix_ms(), counts["time_refused"], ticker.gap)
    for name in OPTS["names"]:
        ticker.gap = 0
        try:
            addr = await resolver.resolve(name)
        except OSError as e:
            addr = "error:%d" % e.args[0]
        print("dns", name, addr, ticker.gap)
    t.cancel()


asyncio.run(main())

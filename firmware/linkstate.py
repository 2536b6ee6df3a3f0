"""The node's link, as events: DOWN (no Wi-Fi), WIFI (Wi-Fi, no broker session), UP (broker session up),
REFUSED (Wi-Fi, but the broker failed TLS verification: a wrong certificate or host name; nothing was sent).

The uplink owns one `LinkState` and sets it; whoever cares listens: `listen(fn)` calls fn(state) at once and
on every change (the UI's link LED, the uplink itself). Nobody polls it.

The Wi-Fi level has no event of its own on the ESP32 (network.WLAN has no disconnect callback), so `watch()`
samples `link.isconnected()` every WIFI_SAMPLE_MS and turns a change into these events: the one place the
firmware samples a level instead of waiting for an event.
"""

DOWN = 0
WIFI = 1
UP = 2
REFUSED = 3
WIFI_SAMPLE_MS = 1000


class LinkState:
    def __init__(self):
        self.state = DOWN
        self._listeners = []

    def listen(self, fn):
        self._listeners.append(fn)
        fn(self.state)

    def set(self, state):
        if state != self.state:
            self.state = state
            for fn in self._listeners:
                fn(state)

    async def watch(self, link, clock):
        """Forever: Wi-Fi lost -> DOWN; Wi-Fi back while DOWN -> WIFI (the uplink sets UP itself)."""
        while True:
            await clock.sleep_ms(WIFI_SAMPLE_MS)
            if not link.isconnected():
                self.set(DOWN)
            elif self.state == DOWN:
                self.set(WIFI)

"""What the gateway keeps of what it refuses: bounded, rate-limited, counted (issue 11 item 5). Pure.

A refused message (a Rejection from gateway/protocol.py, or a message from an identity not in the node
registry: `unknown_identity`) becomes at most one quarantine row holding the first TOPIC_HEAD_BYTES of its
topic and the first PAYLOAD_HEAD_BYTES of its payload. Rows are rate-limited per source, and every message is
counted in `quarantine_sources` whether its row was kept or dropped:

- the source is the node the topic names when site and node are valid identifiers (`site/node`), else the
  topic's root (its first two levels, each cut to 32 characters): whatever cannot name a node shares one bucket;
- per source at most PER_SOURCE rows per WINDOW_MS, and at most ALL_SOURCES rows per window over every source;
- an unknown identity gets one row, ever (the first message that passes the limits), then only counts;
- at most MAX_SOURCES sources are counted by name; messages from any further source count under OVERFLOW.

The bounds are stated in docs/gateway.md ("Bounds on what reaches the gateway"). The limiter's state lives in
memory (per gateway instance) on the monotonic clock; which sources exist and which identities already have
their row are read back from the store at start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gateway.store.base import QuarantineSource

UNKNOWN_IDENTITY = "unknown_identity"
TOPIC_HEAD_BYTES = 256
PAYLOAD_HEAD_BYTES = 256
WINDOW_MS = 600_000
PER_SOURCE = 20
ALL_SOURCES = 100
MAX_SOURCES = 1_000
OVERFLOW = "*"
_ROOT_LEVEL = 32


def source_of(topic: str, site: str | None, node: str | None) -> str:
    """Who a refused message is counted against (see the module docstring)."""
    if site and node:
        return f"{site}/{node}"
    return "/".join(level[:_ROOT_LEVEL] for level in topic.split("/", 2)[:2])


def topic_head(topic: str) -> str:
    """The topic as stored: whole up to TOPIC_HEAD_BYTES of UTF-8, else its head and how much was cut."""
    raw = topic.encode()
    if len(raw) <= TOPIC_HEAD_BYTES:
        return topic
    head = raw[:TOPIC_HEAD_BYTES].decode("utf-8", "ignore")
    return f"{head}...(+{len(raw) - len(head.encode())} bytes)"


class Limiter:
    """Decides, message by message, whether a refused message gets its quarantine row, and under which source
    name it is counted. `sources`: the sources already counted in the store; `once`: those of them whose one
    unknown_identity row is stored."""

    def __init__(self, monotonic: Callable[[], int], sources: Iterable[str] = (), once: Iterable[str] = ()) -> None:
        self._monotonic = monotonic
        self._sources = set(sources)
        self._once = set(once)
        self._window = -1
        self._in_window: dict[str, int] = {}
        self._all = 0
        self.kept = 0  # rows stored since start (metrics-ready counters)
        self.dropped = 0  # messages counted but not stored since start

    @classmethod
    def stored(cls, sources: list[QuarantineSource], monotonic: Callable[[], int]) -> Limiter:
        """A limiter that goes on from what the store counted (Store.quarantine_sources)."""
        return cls(monotonic, [s.source for s in sources], [s.source for s in sources if s.identity_row])

    def admit(self, source: str, reason: str) -> tuple[str, bool]:
        """(the source name it is counted under, whether to store its row)."""
        name = self._named(source)
        window = self._monotonic() // WINDOW_MS
        if window != self._window:
            self._window, self._in_window, self._all = window, {}, 0
        n = self._in_window.get(name, 0)
        keep = n < PER_SOURCE and self._all < ALL_SOURCES
        if reason == UNKNOWN_IDENTITY:
            keep = keep and name not in self._once
        if keep:
            self._in_window[name] = n + 1
            self._all += 1
            self.kept += 1
            if reason == UNKNOWN_IDENTITY:
                self._once.add(name)
        else:
            self.dropped += 1
        return name, keep

    def _named(self, source: str) -> str:
        if source in self._sources:
            return source
        if len(self._sources) >= MAX_SOURCES:
            return OVERFLOW
        self._sources.add(source)
        return source

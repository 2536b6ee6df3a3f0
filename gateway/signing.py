"""The node registry, and the gateway's signature on every command to a node (receipt, verdict, config).

The registry is a JSON file written by `checkpoint-gateway provision` (gateway/provision.py), readable only by
the gateway's user because it holds each node's HMAC key:

    {"v": 1, "nodes": {"bridge-1/lane-1": {"key": "<64 hex>", "user": "bridge-1.lane-1", "since": ms,
                                           "retired": null}}}

`Signer.seal(out)` gives a message to a registered node its counter and MAC (firmware/auth.py, the node's own
code, so both ends frame it the same way; docs/protocol.md "Signed downlink"); messages to nodes not in the
registry, and every message when no registry is configured, go out unsigned (protocol v1 as before).

The counter (one per gateway instance, for every node) is max(the wall clock in ms, the last counter + 1): it
never goes back, whatever the clock does. Its ceiling is written ahead to the store (`downlink_counters`,
CEILING_AHEAD_MS above the counter, so at most one write per 10 s of counters) and read back at start: a gateway
whose clock was stepped back, or restarted with a clock behind, goes on from above the last counter it may have
sent, and the nodes keep accepting its receipts and verdicts (the counter runs ahead of the clock until the
clock catches up). A second instance whose clock runs behind another's by T has its commands to a node that
heard the other refused as replays for up to T (each node reports them in its status: auth_refused; scans stay
safe in the node's outbox meanwhile).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import firmware
from gateway.errors import ConfigError, StoreError
from gateway.ingest import Outgoing
from gateway.store.base import Store

_auth: Any = firmware.module("auth")  # the node's own framing and HMAC (MicroPython subset, untyped)
_contract: Any = firmware.module("contract")
REGISTRY_VERSION = 1
CEILING_AHEAD_MS = 10_000
log = logging.getLogger("gateway.signing")


@dataclass(frozen=True, slots=True)
class NodeEntry:
    site: str
    node: str
    key: str  # 64 hex digits
    user: str  # the broker user name
    since: int  # ms, provisioned or last rotated
    retired: int | None = None  # ms; a retired node is unknown to the gateway (its scans are quarantined)


class Registry:
    """Nodes by (site, node). `load` / `save` (atomic, mode 0600)."""

    def __init__(self, nodes: dict[tuple[str, str], NodeEntry] | None = None) -> None:
        self.nodes = nodes or {}

    @classmethod
    def load(cls, path: str | Path) -> Registry:
        p = Path(path)
        try:
            doc = json.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"gateway.registry: no such file {p} (written by checkpoint-gateway provision)") from None
        except (OSError, ValueError) as e:
            raise ConfigError(f"gateway.registry: cannot read {p}: {e}") from None
        if not isinstance(doc, dict) or doc.get("v") != REGISTRY_VERSION or not isinstance(doc.get("nodes"), dict):
            raise ConfigError(f"gateway.registry: {p} is not a node registry (v {REGISTRY_VERSION})")
        nodes = {}
        for name, n in doc["nodes"].items():
            site, _, node = name.partition("/")
            try:
                entry = NodeEntry(site, node, n["key"], n["user"], n["since"], n.get("retired"))
                bytes.fromhex(entry.key)
            except (KeyError, TypeError, ValueError) as e:
                raise ConfigError(f"gateway.registry: {p}: node {name!r} is not a registry entry ({e!r})") from None
            if len(entry.key) != 64 or not (_contract.is_identifier(site) and _contract.is_identifier(node)):
                raise ConfigError(f"gateway.registry: {p}: node {name!r} needs a site/node name and a 64-digit key")
            nodes[(site, node)] = entry
        return cls(nodes)

    def save(self, path: str | Path) -> None:
        p = Path(path)
        nodes = {f"{site}/{node}": {"key": e.key, "user": e.user, "since": e.since, "retired": e.retired}
                 for (site, node), e in sorted(self.nodes.items())}  # fmt: skip
        doc = {"v": REGISTRY_VERSION, "nodes": nodes}
        tmp = p.with_name(p.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)

    def active(self, site: str, node: str) -> NodeEntry | None:
        e = self.nodes.get((site, node))
        return e if e is not None and e.retired is None else None

    def known(self, site: str, node: str) -> bool:
        """Whether the gateway admits what this node sends (provisioned and not retired)."""
        return self.active(site, node) is not None

    def retire(self, site: str, node: str, now: int) -> None:
        self.nodes[(site, node)] = replace(self.nodes[(site, node)], retired=now)


def load_registry(path: str) -> Registry | None:
    """The configured registry (gateway.registry), None when none is configured."""
    return Registry.load(path) if path else None


class Signer:
    """`last`: the stored ceiling (Store.counter) the counter starts above; `persist(ceiling)`: writes a new one
    (Transaction.raise_counter in a transaction of its own). Without them the counter starts at the clock."""

    def __init__(
        self,
        registry: Registry | None,
        prefix: str,
        clock: Callable[[], int],
        last: int = 0,
        persist: Callable[[int], None] | None = None,
    ) -> None:
        self._registry, self._prefix, self._clock = registry, prefix + "/", clock
        self._last = self._ceiling = last
        self._persist = persist

    def counter(self) -> int:
        """The next counter: the wall clock in ms, or one above the last if that is not above it. A counter above
        the stored ceiling goes out only after a new ceiling is stored (if that fails: logged, and it goes out
        anyway; after a restart the node may then refuse a few commands as replays until the counter passes)."""
        ctr = max(self._clock(), self._last + 1)
        if ctr > self._ceiling:
            self._ceiling = ctr + CEILING_AHEAD_MS
            if self._persist is not None:
                try:
                    self._persist(self._ceiling)
                except StoreError as e:
                    log.warning("cannot store the downlink counter's ceiling %d: %s", self._ceiling, e)
        self._last = ctr
        return ctr

    def seal(self, out: Outgoing) -> Outgoing:
        """`out` signed for its node if it is a command to a registered node, else `out` itself."""
        if self._registry is None or not out.topic.startswith(self._prefix):
            return out
        parts = out.topic[len(self._prefix) :].split("/")
        if len(parts) != 3 or parts[2] not in _contract.DOWNLINK:
            return out
        entry = self._registry.active(parts[0], parts[1])
        if entry is None:
            return out
        return replace(out, payload=sign(entry.key, out.topic, out.payload, self.counter()))


def stored_signer(registry: Registry | None, prefix: str, name: str, store: Store, clock: Callable[[], int]) -> Signer:
    """The signer of gateway instance `name`, its counter going on from the ceiling stored under that name."""

    def persist(ceiling: int) -> None:
        with store.transaction() as tx:
            tx.raise_counter(name, ceiling)

    return Signer(registry, prefix, clock, store.counter(name), persist)


def sign(key_hex: str, topic: str, payload: bytes, ctr: int) -> bytes:
    """A JSON object's bytes with `ctr` and then `sig` appended (the node checks both: firmware/auth.py)."""
    if payload[-1:] != b"}" or b'"ctr"' in payload:
        raise ValueError(f"cannot sign {payload[:40]!r}: not a JSON object, or it has a counter already")
    body = payload[:-1] + (b',"ctr":%d}' % ctr if payload != b"{}" else b'{"ctr":%d}' % ctr)
    return bytes(_auth.seal(bytes.fromhex(key_hex), topic, body))


def new_key() -> str:
    """A fresh node key: 32 random bytes, hex."""
    return os.urandom(32).hex()

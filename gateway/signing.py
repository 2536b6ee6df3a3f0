"""The node registry, and the gateway's signature on every command to a node (receipt, verdict, config).

The registry is a JSON file written by `checkpoint-gateway provision` (gateway/provision.py), readable only by
the gateway's user because it holds each node's HMAC key:

    {"v": 1, "nodes": {"bridge-1/lane-1": {"key": "<64 hex>", "user": "bridge-1.lane-1", "since": ms,
                                           "retired": null}}}

`Signer.seal(out)` gives a message to a registered node its counter and MAC (firmware/auth.py, the node's own
code, so both ends frame it the same way; docs/protocol.md "Signed downlink"); messages to nodes not in the
registry, and every message when no registry is configured, go out unsigned (protocol v1 as before).

The counter is the gateway's wall clock in ms, raised by one when two messages to a node fall in the same ms:
it increases across gateway restarts without being stored. A gateway clock set back by T (or a second gateway
instance whose clock runs behind) has its commands refused as replays for up to T; each node reports them in
its status (auth_refused), and scans stay safe in the node's outbox meanwhile.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import firmware
from gateway.errors import ConfigError
from gateway.ingest import Outgoing

_auth: Any = firmware.module("auth")  # the node's own framing and HMAC (MicroPython subset, untyped)
_contract: Any = firmware.module("contract")
REGISTRY_VERSION = 1


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
            nodes[(site, node)] = NodeEntry(site, node, n["key"], n["user"], n["since"], n.get("retired"))
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

    def retire(self, site: str, node: str, now: int) -> None:
        self.nodes[(site, node)] = replace(self.nodes[(site, node)], retired=now)


def load_registry(path: str) -> Registry | None:
    """The configured registry (gateway.registry), None when none is configured."""
    return Registry.load(path) if path else None


class Signer:
    def __init__(self, registry: Registry | None, prefix: str, clock: Callable[[], int]) -> None:
        self._registry, self._prefix, self._clock = registry, prefix + "/", clock
        self._last: dict[tuple[str, str], int] = {}

    def counter(self, site: str, node: str) -> int:
        """The next counter for this node: the wall clock in ms, or one above the last if that is not above it."""
        ctr = max(self._clock(), self._last.get((site, node), 0) + 1)
        self._last[(site, node)] = ctr
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
        return replace(out, payload=sign(entry.key, out.topic, out.payload, self.counter(parts[0], parts[1])))


def sign(key_hex: str, topic: str, payload: bytes, ctr: int) -> bytes:
    """A JSON object's bytes with `ctr` and then `sig` appended (the node checks both: firmware/auth.py)."""
    if payload[-1:] != b"}" or b'"ctr"' in payload:
        raise ValueError(f"cannot sign {payload[:40]!r}: not a JSON object, or it has a counter already")
    body = payload[:-1] + (b',"ctr":%d}' % ctr if payload != b"{}" else b'{"ctr":%d}' % ctr)
    return bytes(_auth.seal(bytes.fromhex(key_hex), topic, body))


def new_key() -> str:
    """A fresh node key: 32 random bytes, hex."""
    return os.urandom(32).hex()

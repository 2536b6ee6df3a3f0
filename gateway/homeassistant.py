"""Home Assistant MQTT discovery (`[homeassistant] enabled = true`; off by default).

Each node is a device in Home Assistant with four entities, each site a device with one:

| entity | component | where its state comes from |
|---|---|---|
| connectivity | binary_sensor (connectivity) | the node's retained status and its last will (`.../status`, `state`) |
| outbox depth | sensor | the node's health (`outbox_depth`) |
| sensor faults | sensor | the node's health (`sensor_errors`, the total when it is per kind) |
| scans today | sensor | the gateway: scans stored today ([report] timezone), on its state topic |
| open fevers (per site) | sensor | the gateway: fever alerts not resolved at the site |

Discovery configs are retained on `{discovery_prefix}/{component}/{node_id}/{object_id}/config` (node_id
`checkpoint_{site}_{node}` or `checkpoint_{site}`: identifiers never hold "_", so no two names meet), published
when a node first appears and again on every connection to the broker; a node retired in the registry has
each of its configs cleared by an empty retained message, which removes it from Home Assistant. The gateway's
own entities are unavailable while the gateway's retained status says offline. No person's temperature, reading
or verdict is ever sent: counts and the node's own health only.

The gateway's state topics live under its own `{prefix}/gateway/{instance}/homeassistant/...`; Home Assistant's
broker user reads them and the nodes' status and health topics, nothing else (docs/operations.md).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway import alerts
from gateway.config import Config, HomeAssistantSection
from gateway.errors import StoreError
from gateway.ingest import Outcome, Outgoing
from gateway.logs import RateLimitedLog
from gateway.protocol import Topics
from gateway.signing import load_registry
from gateway.store.base import NodeRow, Store

log = logging.getLogger("gateway.homeassistant")
STATE_EVERY_MS = 60_000  # the gateway's counts (scans today, open fevers) are published this often at most
MANUFACTURER = "checkpoint-screening"


def node_id(site: str, node: str | None = None) -> str:
    return f"checkpoint_{site}" if node is None else f"checkpoint_{site}_{node}"


class Discovery:
    """The discovery payloads (pure: tested against Home Assistant's documented keys and topic layout)."""

    def __init__(self, cfg: HomeAssistantSection, topics: Topics, instance: str) -> None:
        self.cfg, self.topics, self.instance = cfg, topics, instance
        self.base = f"{topics.prefix}/gateway/{instance}/homeassistant"

    def availability(self) -> list[dict[str, str]]:
        return [{"topic": self.topics.gateway_status(self.instance), "value_template": "{{ value_json.state }}",
                 "payload_available": "online", "payload_not_available": "offline"}]  # fmt: skip

    def state_topic(self, site: str, node: str | None = None) -> str:
        return f"{self.base}/{site}" if node is None else f"{self.base}/{site}/{node}"

    def config_topic(self, component: str, nid: str, object_id: str) -> str:
        return f"{self.cfg.discovery_prefix}/{component}/{nid}/{object_id}/config"

    def node(self, site: str, node: str, fw: str | None) -> dict[str, dict[str, Any]]:
        """Config topic -> payload for each of a node's entities."""
        nid = node_id(site, node)
        device = {"identifiers": [nid], "name": f"Checkpoint {site}/{node}", "manufacturer": MANUFACTURER,
                  "model": "ESP32 + MLX90614 screening node", "via_device": node_id(site)}  # fmt: skip
        if fw:
            device["sw_version"] = fw
        health = self.topics.node(site, node, "health")
        errors = "{% set e = value_json.sensor_errors %}{{ e if e is number else (e.values() | sum) }}"
        entities: dict[tuple[str, str], dict[str, Any]] = {
            ("binary_sensor", "connectivity"): {
                "name": "Connectivity", "device_class": "connectivity",
                "state_topic": self.topics.node(site, node, "status"),
                "value_template": "{{ value_json.state }}", "payload_on": "online", "payload_off": "offline",
            },
            ("sensor", "outbox_depth"): {
                "name": "Outbox depth", "state_topic": health, "value_template": "{{ value_json.outbox_depth }}",
                "unit_of_measurement": "scans", "state_class": "measurement", "entity_category": "diagnostic",
            },
            ("sensor", "sensor_faults"): {
                "name": "Sensor faults", "state_topic": health, "value_template": errors,
                "state_class": "total", "entity_category": "diagnostic",
            },
            ("sensor", "scans_today"): {
                "name": "Scans today", "state_topic": self.state_topic(site, node),
                "value_template": "{{ value_json.scans_today }}", "unit_of_measurement": "scans",
                "state_class": "total", "availability": self.availability(),
            },
        }  # fmt: skip
        return {self.config_topic(c, nid, o): {**e, "unique_id": f"{nid}_{o}", "object_id": f"{nid}_{o}",
                                               "device": device} for (c, o), e in entities.items()}  # fmt: skip

    def site(self, site: str) -> dict[str, dict[str, Any]]:
        nid = node_id(site)
        device = {"identifiers": [nid], "name": f"Checkpoint {site}", "manufacturer": MANUFACTURER, "model": "Post"}
        entity = {"name": "Open fevers", "state_topic": self.state_topic(site), "unique_id": f"{nid}_open_fevers",
                  "object_id": f"{nid}_open_fevers", "value_template": "{{ value_json.open_fevers }}",
                  "unit_of_measurement": "alerts", "state_class": "measurement", "availability": self.availability(),
                  "device": device}  # fmt: skip
        return {self.config_topic("sensor", nid, "open_fevers"): entity}


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


class Announcer:
    """What to publish so Home Assistant shows the fleet: `step()` from the service loop (its thread)."""

    def __init__(
        self,
        discovery: Discovery,
        retired: Iterable[tuple[str, str]],
        timezone: str,
        clock: Callable[[], int],
        monotonic: Callable[[], int],
    ) -> None:
        self.d, self._tz, self._clock, self._monotonic = discovery, ZoneInfo(timezone), clock, monotonic
        self.retired = set(retired)  # (site, node) retired in the registry: removed from Home Assistant
        self._announced: set[str] = set()  # node ids (and site ids) whose configs are published
        self._cleared: set[str] = set()  # retired node ids whose configs are cleared
        self._states_at: int | None = None
        self._log = RateLimitedLog(log, 60_000, monotonic)

    def reconnected(self) -> None:
        """The broker may have lost its retained messages: announce everything again at the next step."""
        self._announced.clear()
        self._cleared.clear()
        self._states_at = None

    def step(self, store: Store) -> Outcome:
        """What to publish now (the service loop's thread, after its silence check and on each connection)."""
        try:
            nodes = store.nodes()
            out = self.announce(nodes, self.retired)
            mono = self._monotonic()
            if out or self._states_at is None or mono - self._states_at >= STATE_EVERY_MS:
                out += self.states(nodes, self.retired, store)
                self._states_at = mono
        except StoreError as e:
            self._log.warning("homeassistant", f"cannot read the fleet for Home Assistant: {e}")
            return Outcome()
        return Outcome(publish=out)

    def announce(self, nodes: list[NodeRow], retired: Iterable[tuple[str, str]]) -> list[Outgoing]:
        """Configs of nodes (and sites) not announced yet; empty retained configs of retired nodes."""
        gone = set(retired)
        out: list[Outgoing] = []
        for n in nodes:
            nid = node_id(n.site, n.node)
            if (n.site, n.node) in gone or nid in self._announced:
                continue
            configs = self.d.node(n.site, n.node, n.fw)
            if node_id(n.site) not in self._announced:
                configs = {**self.d.site(n.site), **configs}
                self._announced.add(node_id(n.site))
            self._announced.add(nid)
            out += [Outgoing(t, _json(p), retain=True) for t, p in configs.items()]
        for site, node in sorted(gone):
            nid = node_id(site, node)
            if nid not in self._cleared:  # at start too: it may have been announced by an earlier run
                self._cleared.add(nid)
                self._announced.discard(nid)
                out += [Outgoing(t, b"", retain=True) for t in self.d.node(site, node, None)]
        return out

    def states(self, nodes: list[NodeRow], retired: Iterable[tuple[str, str]], store: Store) -> list[Outgoing]:
        """Scans today per node and open fevers per site, from the database."""
        gone = set(retired)
        now = datetime.fromtimestamp(self._clock() / 1000, self._tz)
        midnight = int(now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
        today = Counter((r.site, r.node) for r in store.scans(midnight, None, None))
        fevers = Counter(a.site for a in store.alerts(None, None, None, open_only=True) if a.kind == alerts.FEVER)
        out = [Outgoing(self.d.state_topic(n.site, n.node), _json({"scans_today": today[(n.site, n.node)]}),
                        retain=True) for n in nodes if (n.site, n.node) not in gone]  # fmt: skip
        for site in sorted({n.site for n in nodes}):
            out.append(Outgoing(self.d.state_topic(site), _json({"open_fevers": fevers[site]}), retain=True))
        return out


def announcer(cfg: Config, clock: Callable[[], int], monotonic: Callable[[], int]) -> Announcer | None:
    """The service's announcer, or None when `[homeassistant] enabled` is false."""
    if not cfg.homeassistant.enabled:
        return None
    registry = load_registry(cfg.gateway.registry)
    retired = [key for key, e in registry.nodes.items() if e.retired is not None] if registry else []
    discovery = Discovery(cfg.homeassistant, Topics(cfg.mqtt.topic_prefix), cfg.gateway.instance)
    return Announcer(discovery, retired, cfg.report.timezone, clock, monotonic)

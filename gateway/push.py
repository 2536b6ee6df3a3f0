"""`checkpoint-gateway push-config`: send a node a new config (mode, threshold, a calibration) over MQTT.

The config goes retained, QoS 1, to `{prefix}/{site}/{node}/config` (docs/protocol.md), so a node that is
offline now applies it when it reconnects. Before anything is sent, the push is checked with the firmware's
own validation (firmware/config.py `merge_push`) on a default node config, so a typo is refused here with the
node's own reason instead of in a node's `status` at 3 a.m. With `--wait S` the command waits for the node's
retained status to report the new config id (applied and persisted) or a `config_error`.

With a node registry (gateway.registry) the config is signed with the node's key and a counter (the wall clock
in ms; gateway/signing.py), and a node that is not registered (or retired) is refused here: a provisioned node
applies only a config signed for it, with a counter above the last one it applied (docs/security.md).

The push is also kept in the gateway's database (the node's last pushed config): on a broker cluster, whose
members keep a retained message each to itself, the gateway sends it again when the node comes online on any
member with another config id (gateway/ingest.py; docs/scale.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

import firmware
from gateway import config as config_mod
from gateway import mqtt
from gateway.errors import GatewayError
from gateway.protocol import MAX_PAYLOAD_BYTES, PROTOCOL_VERSION, Topics, is_identifier
from gateway.signing import Registry, load_registry, sign
from gateway.store import open_store
from gateway.store.base import NodeConfigRow


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", help="mqtt://host:port or mqtts://host:port (overrides [mqtt] broker)")
    p.add_argument("--site", required=True)
    p.add_argument("--node", required=True)
    p.add_argument("--id", required=True, dest="config_id", help="the config's id, reported back in status")
    p.add_argument("--mode", choices=("forehead", "canthus"))
    p.add_argument("--threshold", type=float, help="display threshold, C (a site's, e.g. 37.3)")
    p.add_argument("--calibration", type=Path, help="a calibration JSON file (docs/screening.md)")
    p.add_argument("--wait", type=float, default=0.0, metavar="S", help="wait S seconds for the node to apply it")


def build(args: argparse.Namespace) -> dict[str, Any]:
    """The push payload; GatewayError naming the problem if the node would refuse it."""
    for what in ("site", "node"):
        if not is_identifier(getattr(args, what)):
            raise GatewayError(f"--{what} {getattr(args, what)!r}: must match [a-z0-9][a-z0-9-]{{0,31}}")
    push: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": args.config_id}
    if args.mode is not None:
        push["mode"] = args.mode
    if args.threshold is not None:
        push["threshold_c"] = args.threshold
    if args.calibration is not None:
        try:
            push["calibration"] = json.loads(args.calibration.read_text())
        except (OSError, ValueError) as e:
            raise GatewayError(f"--calibration {args.calibration}: cannot read it as JSON ({e})") from e
    return checked(args.site, args.node, push)


def checked(site: str, node: str, push: dict[str, Any]) -> dict[str, Any]:
    """`push` if the node's own validation (firmware/config.py merge_push, on a default node config) takes it;
    GatewayError with the node's reason if not."""
    fw_config: Any = firmware.module("config")  # the node's own validation (untyped MicroPython subset)
    base, reason = fw_config.validate({"site": site, "node": node, "broker": {"host": "broker"}})
    if base is None:
        raise GatewayError(f"cannot build a node config to check against: {reason}")
    new, reason = fw_config.merge_push(base, push)
    if new is None:
        raise GatewayError(f"the node would refuse this config: {reason}")
    return push


def payload(push: dict[str, Any], topic: str, site: str, node: str, registry: Registry | None, now_ms: int) -> bytes:
    """The bytes to publish: signed for the node when there is a registry (GatewayError if it lacks the node,
    or if the message is larger than every message to a node may be: contract MAX_PAYLOAD, which the node reads;
    a larger packet it would skip unread, never applying the config)."""
    body = json.dumps(push, separators=(",", ":")).encode()
    if registry is not None:
        entry = registry.active(site, node)
        if entry is None:
            raise GatewayError(f"{site}/{node} is not in the node registry (or retired): provision it first")
        body = sign(entry.key, topic, body, now_ms)
    if len(body) > MAX_PAYLOAD_BYTES:
        raise GatewayError(f"the config is {len(body)} bytes, more than the {MAX_PAYLOAD_BYTES} a node reads:"
                           " nothing sent (a calibration with fewer or shorter entries fits)")  # fmt: skip
    return body


def keep(cfg: config_mod.Config, row: NodeConfigRow) -> None:
    """Keep the push as the node's last config in the gateway's database, or say why it is not kept (the push
    itself goes on: on Mosquitto the retained message is enough)."""
    try:
        store = open_store(cfg.store.db, cfg.store.synchronous, create=False)
        with contextlib.closing(store), store.transaction() as tx:
            tx.save_node_config(row)
    except (GatewayError, OSError) as e:
        print(f"push-config: not kept in {cfg.store.db} ({e}): on a broker cluster the gateway cannot send it"
              " again, so the node gets it only from the member it is published on", file=sys.stderr)  # fmt: skip
        return
    print(f"push-config: kept as {row.site}/{row.node}'s config in {cfg.store.db} (sent again on a broker cluster)")


def run(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    return send(args, cfg, with_reference(cfg, args.site, args.node, build(args)))


def with_reference(cfg: config_mod.Config, site: str, node: str, push: dict[str, Any]) -> dict[str, Any]:
    """`push` carrying the node's last reference correction (`checkpoint-gateway reference record`), so the
    retained config and the gateway's kept copy hold it too: a node flashed again, or one that takes its
    config from the copy sent again on a broker cluster, still corrects its unit. Unchanged when the push
    names a correction itself or the node has none; when the database cannot be read the push goes as it is
    and the command says so."""
    if "reference" in push:
        return push
    try:
        store = open_store(cfg.store.db, cfg.store.synchronous, create=False)
        with contextlib.closing(store):
            history = store.references(site, node)
    except (GatewayError, OSError) as e:
        print(f"push-config: cannot read {site}/{node}'s reference checks in {cfg.store.db} ({e}): the push does"
              " not carry its correction (the node keeps the one it has)", file=sys.stderr)  # fmt: skip
        return push
    if not history:
        return push
    last = history[-1]
    print(f"push-config: carries {site}/{node}'s reference correction of its last check (gain {last.gain:.5f}, "
          f"offset {last.offset_c:+.3f} C)")  # fmt: skip
    return checked(site, node, dict(push, reference={"gain": last.gain, "offset_c": last.offset_c}))


def send(args: argparse.Namespace, cfg: config_mod.Config, push: dict[str, Any]) -> int:
    """Sign (with a registry), keep and publish a checked push to args.site/args.node; with args.wait, wait for
    the node's answer. GatewayError when the broker cannot be reached."""
    topics = Topics(cfg.mqtt.topic_prefix)
    topic = topics.node(args.site, args.node, "config")
    now = int(time.time() * 1000)
    body = payload(push, topic, args.site, args.node, load_registry(cfg.gateway.registry), now)
    keep(cfg, NodeConfigRow(args.site, args.node, args.config_id, json.dumps(push, separators=(",", ":")), now))
    statuses: queue.Queue[tuple[dict[str, Any], bool]] = queue.Queue()
    connected = threading.Event()
    client = mqtt.client(cfg.mqtt, f"push-config-{args.site}-{args.node}")
    client.on_connect = lambda c, *a: connected.set()
    client.on_message = lambda c, u, m: statuses.put((_json(bytes(m.payload)), bool(m.retain)))
    try:
        client.connect(*mqtt.broker_address(cfg.mqtt))
    except OSError as e:
        raise GatewayError(f"cannot reach the broker {cfg.mqtt.broker}: {e} (check --broker / [mqtt] broker)") from e
    client.loop_start()
    try:
        if not connected.wait(10):
            raise GatewayError(f"the broker {cfg.mqtt.broker} did not accept the connection within 10 s")
        client.publish(topic, body, qos=1, retain=True).wait_for_publish(10)
        print(f"push-config: sent config {args.config_id!r} to {topic} (retained: applied on the next connect)")
        if args.wait > 0:
            return _wait(client, topics.node(args.site, args.node, "status"), statuses, args)
        return 0
    finally:
        client.disconnect()
        client.loop_stop()


def _json(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _wait(
    client: Any, status_topic: str, statuses: queue.Queue[tuple[dict[str, Any], bool]], args: argparse.Namespace
) -> int:
    """The node's status after the push. A retained status predates it: its config_error may be an older push's,
    so only a live status can say "refused"."""
    client.subscribe(status_topic, qos=1)
    try:
        while True:
            body, retained = statuses.get(timeout=args.wait)
            if body.get("config_error") and not retained:
                print(f"push-config: the node refused it: {body['config_error']}")
                return 1
            if body.get("config_id") == args.config_id:
                print(f"push-config: {args.site}/{args.node} runs config {args.config_id!r}")
                return 0
    except queue.Empty:
        print(f"push-config: no confirmation within {args.wait:g} s; the node applies it when it next connects")
        return 3

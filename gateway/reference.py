"""`checkpoint-gateway reference`: per-unit reference calibration at shift start (issue 15 item 3).

Staff scan a reference source with the node at two known temperatures near 35 and 39 C (a blackbody
calibrator, or a stable warm surface read by a reference contact thermometer) and read the node's reading of
each: the scan's t_site_c, the unit's own reading before any correction (`reference readings SITE/NODE` lists
the node's last scans). Then

    reference record SITE/NODE --point 35.0=34.62 --point 39.0=38.71 [--wait S]
    reference list [SITE/NODE]
    reference readings SITE/NODE [--last N]

`record` computes the unit's gain and offset (firmware/reference.py, the node's own arithmetic; its refusals
are one-line errors and nothing is stored or pushed), keeps the check in the node's history with an audit line,
prints the drift against the previous check, and pushes the correction in the node's signed config
(gateway/push.py; merged over the node's last pushed config, so a retained config keeps what it carried).

The node alerts reference_overdue and reference_drift follow from the history: gateway/reference_alerts.py.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import firmware
from gateway import audit, push
from gateway import config as config_mod
from gateway.errors import ConfigError
from gateway.protocol import PROTOCOL_VERSION, is_identifier
from gateway.reference_alerts import CHECK_RANGE_C, DRIFT_LIMIT_C, drift_c
from gateway.store import open_store
from gateway.store.base import ReferenceRow, Store
from gateway.web.i18n import Zones

_ref: Any = firmware.module("reference")  # untyped MicroPython-subset code, imported by name
PROG = "checkpoint-gateway reference"
_PUSHED = ("v", "id", "ctr", "sig")  # a kept push's own header: not carried into the next one
Configured = Callable[[Callable[[argparse.Namespace, config_mod.Config], int]], Callable[[argparse.Namespace], int]]


def register(sub: Any, common: list[argparse.ArgumentParser], configured: Configured) -> None:
    p = sub.add_parser("reference", parents=common, help="per-unit reference calibration: record, list, readings")
    verbs = p.add_subparsers(required=True, metavar="VERB")
    rec = verbs.add_parser("record", help="a two-point check of a node: its gain and offset, pushed to it")
    rec.add_argument("unit", metavar="SITE/NODE")
    rec.add_argument("--point", action="append", required=True, metavar="REF=READ",
                     help="reference temperature = the node's reading of it, C (twice: near 35 and 39 C)")  # fmt: skip
    rec.add_argument("--broker", help="mqtt://host:port or mqtts://host:port (overrides [mqtt] broker)")
    rec.add_argument("--wait", type=float, default=0.0, metavar="S", help="wait S seconds for the node to apply it")
    ls = verbs.add_parser("list", help="the history of reference checks")
    ls.add_argument("unit", nargs="?", metavar="SITE[/NODE]")
    rd = verbs.add_parser("readings", help="the node's last readings (t_site_c, uncorrected): what to record")
    rd.add_argument("unit", metavar="SITE/NODE")
    rd.add_argument("--last", type=int, default=10, metavar="N")
    rec.set_defaults(func=configured(_with_store(_record)))
    ls.set_defaults(func=configured(_with_store(_list)))
    rd.set_defaults(func=configured(_with_store(_readings)))


def unit(text: str) -> tuple[str, str]:
    """(site, node) of SITE/NODE; ConfigError naming it otherwise."""
    site, node = scope(text)
    if node is None:
        raise ConfigError(f"{text!r}: give SITE/NODE, each [a-z0-9][a-z0-9-]{{0,31}}")
    return site, node


def scope(text: str) -> tuple[str, str | None]:
    """(site, node) of SITE/NODE, or (site, None) of SITE; ConfigError naming it otherwise."""
    site, slash, node = text.partition("/")
    if is_identifier(site) and (is_identifier(node) or not slash):
        return site, node or None
    raise ConfigError(f"{text!r}: give SITE or SITE/NODE, each [a-z0-9][a-z0-9-]{{0,31}}")


def points(given: Sequence[str]) -> tuple[float, float, float, float]:
    """(ref_lo, read_lo, ref_hi, read_hi) from two REF=READ texts; ConfigError naming what is wrong."""
    if len(given) != 2:
        raise ConfigError(f"give exactly two --point REF=READ (near {_ref.REFERENCE_C[0]} and {_ref.REFERENCE_C[1]}"
                          f" C), got {len(given)}")  # fmt: skip
    out: list[float] = []
    for text in given:
        ref, eq, read = text.partition("=")
        try:
            out += [float(ref), float(read)]
        except ValueError:
            raise ConfigError(f"--point {text!r}: give REF=READ in C, e.g. 35.0=34.62") from None
        if not eq:
            raise ConfigError(f"--point {text!r}: give REF=READ in C, e.g. 35.0=34.62")
    return out[0], out[1], out[2], out[3]


def correction(pts: tuple[float, float, float, float]) -> dict[str, float]:
    """The unit's correction from its points: two_point's refusal as a one-line ConfigError."""
    try:
        return dict(_ref.two_point(*pts))
    except ValueError as e:
        raise ConfigError(f"not recorded, nothing pushed: {e}") from None


def next_push(site: str, node: str, last_body: str | None, config_id: str, ref: dict[str, float]) -> dict[str, Any]:
    """The push carrying `ref`, over the node's last kept push (its mode, threshold, calibration stay), checked
    by the node's own validation (GatewayError with the node's reason)."""
    body = {k: v for k, v in (json.loads(last_body) if last_body else {}).items() if k not in _PUSHED}
    return push.checked(site, node, {"v": PROTOCOL_VERSION, "id": config_id, **body, "reference": ref})


def _record(args: argparse.Namespace, cfg: config_mod.Config, store: Store, zones: Zones, now: int) -> int:
    site, node = unit(args.unit)
    pts = points(args.point)
    ref = correction(pts)
    config_id = f"ref-{now // 1000}"
    with store.transaction() as tx:
        last = tx.node_config(site, node)
    body = next_push(site, node, last.body if last else None, config_id, ref)
    history = store.references(site, node)
    row = ReferenceRow(site, node, now, *pts, ref["gain"], ref["offset_c"], config_id, audit.cli_actor())
    with store.transaction() as tx:
        tx.save_reference(row)
        audit.record(tx, now, row.checked_by, "reference_recorded", f"{site}/{node}", "",
                     f"gain {row.gain:.5f}, offset {row.offset_c:+.3f} C, points {' '.join(args.point)}, "
                     f"config {config_id}")  # fmt: skip
    print(f"{PROG}: {site}/{node} reads {row.gain:.5f} x true {row.offset_c:+.3f} C (gain {row.gain:.5f}, "
          f"offset {row.offset_c:+.3f} C), checked {zones.show(now, site)}")  # fmt: skip
    if history:
        d = drift_c(history[-1], row)
        word = "beyond" if d > DRIFT_LIMIT_C else "within"
        print(f"{PROG}: drift against the check of {zones.show(history[-1].checked_at, site)}: {d:.2f} C over "
              f"{CHECK_RANGE_C[0]:g}-{CHECK_RANGE_C[1]:g} C ({word} {DRIFT_LIMIT_C} C)")  # fmt: skip
    else:
        print(f"{PROG}: the first check of {site}/{node}: no drift to compare")
    sent = argparse.Namespace(site=site, node=node, config_id=config_id, wait=args.wait)
    return push.send(sent, cfg, body)


def _list(args: argparse.Namespace, cfg: config_mod.Config, store: Store, zones: Zones, now: int) -> int:
    site, node = scope(args.unit) if args.unit else (None, None)
    rows = store.references(site, node)
    for before, row in zip([None, *rows], rows, strict=False):
        same = before is not None and (before.site, before.node) == (row.site, row.node)
        drift = f"drift {drift_c(before, row):.2f} C" if same and before is not None else "first"
        print(f"{row.site}/{row.node}\t{zones.show(row.checked_at, row.site)}\tgain {row.gain:.5f}\t"
              f"offset {row.offset_c:+.3f} C\t{row.ref_lo_c:g}={row.read_lo_c:g} {row.ref_hi_c:g}={row.read_hi_c:g}"
              f"\t{drift}\t{row.config_id}\t({row.checked_by})")  # fmt: skip
    print(f"{PROG}: {len(rows)} check(s)")
    return 0


def _readings(args: argparse.Namespace, cfg: config_mod.Config, store: Store, zones: Zones, now: int) -> int:
    site, node = unit(args.unit)
    scans = [s for s in store.scans(now - 86_400_000, None, site) if s.node == node]
    for s in sorted(scans, key=lambda s: s.scanned_at)[-max(1, args.last) :]:
        print(f"{site}/{node}\tseq {s.seq}\t{zones.show(s.scanned_at, site)}\treading {s.t_site_c} C\t"
              f"sensor ambient {s.t_amb_c} C")  # fmt: skip
    print(f"{PROG}: {min(len(scans), max(1, args.last))} reading(s) of {site}/{node} in the last 24 h (uncorrected)")
    return 0


Verb = Callable[[argparse.Namespace, config_mod.Config, Store, Zones, int], int]


def _with_store(verb: Verb) -> Callable[[argparse.Namespace, config_mod.Config], int]:
    """The verb run on the configured database, with the sites' zones and the time now (ms)."""

    def run(args: argparse.Namespace, cfg: config_mod.Config) -> int:
        store = open_store(cfg.store.db, cfg.store.synchronous, create=False)
        try:
            zones = Zones(cfg.report.timezone, [(s.site, s.timezone) for s in store.sites()])
            return verb(args, cfg, store, zones, int(time.time() * 1000))
        finally:
            store.close()

    return run

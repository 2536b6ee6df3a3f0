"""Export stored rows as CSV or JSON lines, with the protocol's field names, and read them back.

Scans carry the node's fields as sent (site, node, seq, ..., verdict, flags, cal) followed by the gateway's
(gateway_t_core_c, gateway_verdict, gateway_flags, gateway_cal), received_at and scanned_at (Unix ms).
In CSV, null is an empty cell and flags are joined with ";". `read()` turns either format back into the same
rows (used by the simulator to check what the gateway stored, and by the round-trip tests).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, get_type_hints

from gateway.errors import ConfigError
from gateway.store.base import AlertRow, QuarantineRow, ScanRow, Store, columns

WHATS = ("scans", "alerts", "quarantine", "clashes")
FORMATS = ("csv", "jsonl")
_ROW_TYPES: dict[str, type] = {"scans": ScanRow, "alerts": AlertRow, "quarantine": QuarantineRow, "clashes": ScanRow}
_FLAG_SEP = ";"


def open_out(path: str) -> IO[str]:
    """The file an export is written to (--out), or a ConfigError naming what is wrong with the path."""
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"--out {path} is a folder: name a file in it, e.g. {out / 'export.csv'}")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {path}: there is no folder {out.parent} (create it first: mkdir -p {out.parent})")
    try:
        return open(out, "w", encoding="utf-8", newline="")
    except OSError as e:
        raise ConfigError(f"--out {path}: {e.strerror}") from None


def fields(what: str) -> tuple[str, ...]:
    return columns(_ROW_TYPES[what])


def rows(store: Store, what: str, since: int | None, until: int | None, site: str | None) -> Iterator[dict[str, Any]]:
    """Stored rows as plain dicts (tuples as lists, bytes as text)."""
    source: Iterable[Any]
    if what == "scans":
        source = store.scans(since, until, site)
    elif what == "clashes":  # scans stored beside another origin's under one (site, node, seq)
        source = store.clashes(since, until, site)
    elif what == "alerts":
        source = store.alerts(since, until, site)
    else:
        source = store.quarantine(since, until, site)
    for row in source:
        out = dataclasses.asdict(row)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
            elif isinstance(value, bytes):
                out[key] = value.decode("utf-8", errors="backslashreplace")
        yield out


def write(what: str, fmt: str, items: Iterable[dict[str, Any]], stream: IO[str]) -> int:
    """Write rows; returns how many."""
    n = 0
    if fmt == "jsonl":
        for item in items:
            stream.write(json.dumps(item, separators=(",", ":"), ensure_ascii=False) + "\n")
            n += 1
        return n
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(fields(what))
    for item in items:
        writer.writerow([_cell(item[f]) for f in fields(what)])
        n += 1
    return n


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return _FLAG_SEP.join(value)
    return value


def read(what: str, fmt: str, stream: IO[str]) -> list[dict[str, Any]]:
    """Rows written by `write`, with their types restored."""
    if fmt == "jsonl":
        return [json.loads(line) for line in stream if line.strip()]
    hints = get_type_hints(_ROW_TYPES[what])
    reader = csv.DictReader(stream)
    return [{k: _parse(v, hints[k]) for k, v in rec.items()} for rec in reader]


def _parse(text: str, hint: Any) -> Any:
    kinds = [t for t in getattr(hint, "__args__", (hint,)) if t is not type(None)]
    origin = getattr(hint, "__origin__", None)
    if origin is tuple or tuple in kinds:
        return text.split(_FLAG_SEP) if text else []
    if text == "" and (type(None) in getattr(hint, "__args__", ()) or kinds[0] is not str):
        return None
    kind = kinds[0]
    if kind is bytes:
        return text
    return kind(text)

"""Receipts to a node, cut to fit it. Pure.

A batch may hold thousands of one node's scans (`ingest.max_batch` goes up to 10,000, a backlog after an outage
comes in at the broker's max_inflight_messages), and a receipt names each one's seq and origin: 1,000 of them
are about 17 KB. The node reads MQTT packets of at most 8,192 bytes (firmware/mqtt.py `max_packet`) and skips a
larger one unread, so a receipt that big would free nothing, and the node would resend those scans for ever.
So the receipts of a batch go out as several messages, each at most `contract.MAX_PAYLOAD` (4,096) bytes once
signed, and at most `contract.SEQS_MAX` seqs per list (docs/protocol.md, "Receipts"). Each one is a receipt
of its own (signed, counted, acted on by itself), and they go out in seq order. A verdict names one scan and a
config is one push, so nothing else to a node grows with the batch.
"""

from __future__ import annotations

from typing import Any

import firmware

contract: Any = firmware.module("contract")

MAX_BYTES: int = contract.MAX_PAYLOAD  # every message to a node, signed (the node's packet limit is twice this)
# What signing appends at publish (gateway/signing.py): ,"ctr":<up to 19 digits>,"sig":"<64 hex digits>"
SIGNED_ROOM = len(f',"ctr":{contract.INT64},"sig":"{"0" * 64}"')
_EMPTY = len(b'{"v":1,"seqs":[],"origins":[]}')
_REJECTED = len(b',"rejected":[],"rejected_origins":[]')
_LISTS = (("seqs", "origins"), ("rejected", "rejected_origins"))


def pairs(named: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(seq, origin) pairs in seq order, each once (a resend in the same batch is named once)."""
    return sorted(set(named))


def bodies(
    stored: list[tuple[int, int]], rejected: list[tuple[int, int]], limit: int = MAX_BYTES
) -> list[dict[str, Any]]:
    """The receipt bodies for one node's stored and rejected (seq, origin) pairs (each in the order to send):
    as few as fit, each at most `limit` - SIGNED_ROOM bytes of compact JSON (json.dumps with separators ",",
    ":"), each list at most contract.SEQS_MAX long. A batch with nothing to name gives one empty receipt."""
    room = limit - SIGNED_ROOM
    out = [_body()]
    size = _EMPTY
    for which, named in enumerate((stored, rejected)):
        seqs, origins = _LISTS[which]
        for seq, origin in named:
            body = out[-1]
            grow = len(str(seq)) + len(str(origin)) + 2 + (_REJECTED if seqs not in body else 0)
            if size + grow > room or len(body.get(seqs, ())) >= contract.SEQS_MAX:
                body = _body()
                out.append(body)
                size = _EMPTY
                grow = len(str(seq)) + len(str(origin)) + 2 + (_REJECTED if which else 0)
            body.setdefault(seqs, []).append(seq)
            body.setdefault(origins, []).append(origin)
            size += grow
    return out


def _body() -> dict[str, Any]:
    return {"v": contract.VERSION, "seqs": [], "origins": []}

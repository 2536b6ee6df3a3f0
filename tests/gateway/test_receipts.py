"""Receipts cut to fit the node (gateway/receipts.py): every message to a node, signed, is at most
contract.MAX_PAYLOAD bytes (half the node's MQTT packet limit) and each list at most contract.SEQS_MAX long,
whatever the batch; together they name every (seq, origin) pair once, in order, each as the node's contract
reads it."""

from __future__ import annotations

import json
import random

from firmware import module as firmware_module
from gateway import receipts
from gateway.signing import sign

contract = firmware_module("contract")
TOPIC = "checkpoint/v1/bridge-north/lane-12/receipt"


def compact(body: dict[str, object]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def test_the_widest_receipt_fits_once_signed_and_names_every_pair_in_order() -> None:
    """The worst case of a batch of 10,000 (ingest.max_batch at most): every seq and origin at its widest."""
    rng = random.Random(10)
    stored = [(contract.INT64 - 20_000 + i, contract.ORIGIN_MAX - rng.randrange(9)) for i in range(10_000)]
    rejected = [(contract.INT64 - 30_000 + i, contract.ORIGIN_MAX) for i in range(300)]
    bodies = receipts.bodies(stored, rejected)
    for body in bodies:
        signed = sign("5e" * 32, TOPIC, compact(body), contract.INT64)
        assert len(signed) <= contract.MAX_PAYLOAD == receipts.MAX_BYTES
        assert contract.check(json.loads(signed), contract.RECEIPT) is None
        assert len(body["seqs"]) == len(body["origins"])
        assert len(body.get("rejected", [])) == len(body.get("rejected_origins", []))
    assert [p for b in bodies for p in zip(b["seqs"], b["origins"], strict=True)] == stored
    assert [
        p for b in bodies for p in zip(b.get("rejected", []), b.get("rejected_origins", []), strict=True)
    ] == rejected
    assert max(len(compact(b)) for b in bodies) > contract.MAX_PAYLOAD - 2 * receipts.SIGNED_ROOM  # as few as fit
    assert len(bodies) == 82  # 127 of the widest pairs a receipt (a batch of 10,000 was one of 320 KB)


def test_no_list_is_longer_than_the_contract_allows() -> None:
    stored = [(seq, 1) for seq in range(2_500)]
    bodies = receipts.bodies(stored, [], limit=1_000_000)
    assert [len(b["seqs"]) for b in bodies] == [contract.SEQS_MAX, contract.SEQS_MAX, 500]


def test_a_small_batch_is_one_receipt_as_before() -> None:
    assert receipts.bodies(receipts.pairs([(2, 9), (1, 7), (2, 9)]), [(3, 5)]) == [
        {"v": 1, "seqs": [1, 2], "origins": [7, 9], "rejected": [3], "rejected_origins": [5]}
    ]
    assert receipts.bodies([], [(3, 5)]) == [
        {"v": 1, "seqs": [], "origins": [], "rejected": [3], "rejected_origins": [5]}
    ]

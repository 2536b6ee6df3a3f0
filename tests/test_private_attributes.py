"""The gateway uses its libraries through their public API (issue 9 item 4).

`ack_all` once wrote paho's `Client._packet_queue` to batch PUBACKs; gateway/mqtt.py now does it with paho's
public external-loop API. This keeps it so: outside `self`, `cls` and `super()`, no gateway module reads or
writes a `_name` attribute of anything, so an object of paho, pika, psycopg or Starlette is never reached into.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def private_attributes(source: str) -> list[str]:
    """`line: expr._name` for each private attribute of something other than self, cls or super()."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
            continue
        out.append(f"{node.lineno}: {ast.unparse(node)}")
    return out


def test_the_gateway_touches_no_private_attribute_of_a_library() -> None:
    files = sorted((ROOT / "gateway").rglob("*.py"))
    assert len(files) > 30
    found = [f"{p.relative_to(ROOT)}:{line}" for p in files for line in private_attributes(p.read_text("utf-8"))]
    assert found == []


def test_the_check_sees_the_old_ack_all() -> None:
    """The line issue 9 removed: the check above would have failed on it (and passes self's and super()'s)."""
    old = "def ack_all(self, mids):\n    self._client._packet_queue.extend(mids)\n    return super()._ack(self._n)\n"
    assert private_attributes(old) == ["2: self._client._packet_queue"]

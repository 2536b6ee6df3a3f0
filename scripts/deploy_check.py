"""`make deploy`'s gate: the node config must be valid, filled in (no placeholder left by `checkpoint-gateway
provision` or the example), and come with its broker CA file. Prints the CA file's path (to copy beside
config.json) and exits 0, or names the problem and exits 1.

usage: python scripts/deploy_check.py CONFIG_JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import firmware

PLACEHOLDERS = ("change-me", "CHANGE-ME")


def placeholders(obj: Any, where: str = "") -> list[str]:
    """The keys whose value is still a placeholder."""
    if isinstance(obj, dict):
        return [k for name, v in obj.items() for k in placeholders(v, f"{where}{name}.")]
    return [where[:-1]] if isinstance(obj, str) and obj in PLACEHOLDERS else []


def check(path: Path) -> Path | None:
    """The CA file to deploy beside the config (None without TLS); SystemExit naming the problem."""
    try:
        given = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"deploy: cannot read {path}: {e}") from None
    cfg, reason = firmware.module("config").validate(given)
    if cfg is None:
        raise SystemExit(f"deploy: {path}: {reason}")
    todo = [f"{key} (still a placeholder)" for key in placeholders(given)]
    if cfg["broker"]["hmac_key"] is None:
        todo.append("broker.hmac_key (missing: make the config with checkpoint-gateway provision)")
    if not cfg["broker"]["tls"]:
        todo.append("broker.tls (false: nodes talk to the broker over TLS only)")
    ca = path.parent / str(cfg["broker"]["cafile"])
    if cfg["broker"]["tls"] and not ca.is_file():
        todo.append(f"broker.cafile ({ca} is missing: the broker's CA certificate, beside config.json)")
    if todo:
        fields = ", ".join(t.split(" ", 1)[0] for t in todo)
        raise SystemExit(f"deploy: {path}: fill in {fields}:\n" + "\n".join(f"  {t}" for t in todo))
    return ca


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(check(Path(sys.argv[1])))

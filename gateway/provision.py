"""`checkpoint-gateway provision`: nodes in, everything a deployment needs out (docs/security.md).

    checkpoint-gateway provision --dir /etc/checkpoint --broker-host 10.0.0.2 --ca ca.crt bridge-1/lane-1 ...
    checkpoint-gateway provision --dir /etc/checkpoint --rotate bridge-1/lane-1
    checkpoint-gateway provision --dir /etc/checkpoint --retire bridge-1/lane-2
    checkpoint-gateway provision --dir /etc/checkpoint --reader medic          (--remove-reader medic)

Under --dir (created 0700; every secret file 0600):
    registry.json               the gateway's node registry: each node's HMAC key (gateway.registry)
    mosquitto/passwd            broker credentials, hashed by mosquitto_passwd (nodes, the gateway, nothing else)
    mosquitto/acl               per-user blocks, no pattern lines: each node publishes only its own
                                {prefix}/{site}/{node}/{scan,status,health} and reads its own receipt/verdict/config;
                                the gateway everything under the prefix; readers (medics) only alerts
    gateway.password            the gateway's broker password ([mqtt] password_file)
    nodes/{site}/{node}/        config.json (broker URL, TLS with the CA, user, password, HMAC key, identity,
                                Wi-Fi placeholders that `make deploy` refuses until filled) and the CA file
A node's broker user is "{site}.{node}" (a dot is never in an identifier, so no two nodes can share one), and
the broker uses it as the client id (use_username_as_clientid), so nobody takes another's session.
Rotating a node gives it a new key and password (deploy its new config.json); retiring takes it out of the
passwd file and the ACL, and the registry keeps it as retired (its messages are quarantined from then on).
Readers (medics: broker accounts that read alerts, nothing else) are kept from run to run: the reader blocks of
the ACL under --dir are the record of them, so a run that rotates, retires or adds nodes writes them again.
Adding one (`--reader`) or removing one (`--remove-reader`: its ACL block and its passwd entry) is explicit,
and each run prints the readers it wrote. A reader's password is set by the operator in the passwd under
--dir (`mosquitto_passwd DIR/mosquitto/passwd medic`), which every run edits in place and never rewrites.
Reload the broker afterwards (SIGHUP) to apply passwd and ACL.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import firmware
from gateway.errors import GatewayError
from gateway.signing import NodeEntry, Registry, new_key

_contract: Any = firmware.module("contract")
GATEWAY_USER = "gateway"
CA_NAME = "ca.crt"
WIFI_PLACEHOLDER = "CHANGE-ME"


def register(sub: Any) -> None:
    p = sub.add_parser("provision", help="node credentials, keys, broker passwd/ACL and node configs")
    p.add_argument("nodes", nargs="*", metavar="SITE/NODE", help="nodes to add (existing ones are kept as they are)")
    p.add_argument("--dir", type=Path, required=True, help="where the registry, broker files and configs live")
    p.add_argument("--broker-host", default="", help="the broker's address as nodes reach it (its certificate's name)")
    p.add_argument("--port", type=int, default=8883)
    p.add_argument("--ca", type=Path, help="the CA certificate that signed the broker's (PEM)")
    p.add_argument("--prefix", default=_contract.PREFIX)
    p.add_argument("--reader", action="append", default=[], help="add a human account that may read alerts (medic);"
                   " readers already in the ACL are kept")  # fmt: skip
    p.add_argument("--remove-reader", action="append", default=[], metavar="READER", help="remove a reader")
    p.add_argument("--rotate", action="append", default=[], metavar="SITE/NODE", help="new key and password")
    p.add_argument("--retire", action="append", default=[], metavar="SITE/NODE", help="remove a node's access")
    p.set_defaults(func=run)


def _name(text: str) -> tuple[str, str]:
    site, _, node = text.partition("/")
    if not (_contract.is_identifier(site) and _contract.is_identifier(node)):
        raise GatewayError(f"{text!r}: must be SITE/NODE, each [a-z0-9][a-z0-9-]{{0,31}} and not a reserved word"
                           f" ({', '.join(_contract.RESERVED)})")  # fmt: skip
    return site, node


def user(site: str, node: str) -> str:
    return f"{site}.{node}"


def _secret_file(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _passwd(passwd: Path, *args: str) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        raise GatewayError("mosquitto_passwd not found: install the mosquitto package")
    if not passwd.exists():
        _secret_file(passwd, "")
    subprocess.run([tool, *args], check=True, capture_output=True)


def readers_in(text: str, prefix: str) -> tuple[list[str], list[str]]:
    """The readers of an ACL this command wrote (blocks of exactly `topic read {prefix}/alerts/#`), and the
    users of any other block that is neither the gateway's nor a node's (not written by this command)."""
    blocks: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("user "):
            lines = blocks.setdefault(line[5:].strip(), [])
        elif line and not line.startswith("#"):
            lines.append(line)
    alerts = [f"topic read {prefix}/{_contract.ALERTS}/#"]
    readers = sorted(u for u, b in blocks.items() if b == alerts)
    node = re.compile(r"topic (write|read) [^ ]+$")  # a node's block (its user "site.node")
    other = sorted(u for u, b in blocks.items()
                   if u != GATEWAY_USER and b != alerts and not ("." in u and all(map(node.match, b))))  # fmt: skip
    return readers, other


def _readers(args: argparse.Namespace, acl_path: Path) -> tuple[list[str], list[str]]:
    """The readers in the ACL under --dir, and those this run writes: plus --reader, minus --remove-reader
    (checked before anything is changed)."""
    kept, other = readers_in(acl_path.read_text(), args.prefix) if acl_path.exists() else ([], [])
    for name in other:
        print(f"provision: {acl_path}: the block of user {name} was not written by provision: left out")
    for name in args.reader + args.remove_reader:
        if not _contract.is_identifier(name):
            raise GatewayError(f"reader {name!r}: must be [a-z0-9][a-z0-9-]{{0,31}} and not a reserved word"
                               f" ({', '.join(_contract.RESERVED)})")  # fmt: skip
    for name in args.remove_reader:
        if name not in kept or name in args.reader:
            raise GatewayError(f"--remove-reader {name}: not a reader in {acl_path}" if name not in kept
                               else f"{name}: both --reader and --remove-reader")  # fmt: skip
    return kept, sorted((set(kept) | set(args.reader)) - set(args.remove_reader))


def _say_readers(args: argparse.Namespace, before: list[str], readers: list[str], passwd: Path) -> None:
    """Remove the passwd entries of removed readers; print what changed, what is written, what has no password."""
    users = {line.split(":", 1)[0] for line in passwd.read_text().splitlines()}
    for name in args.remove_reader:
        if name in users:
            _passwd(passwd, "-D", str(passwd), name)
        print(f"provision: reader {name} removed (its broker user and ACL block; reload the broker)")
    for name in readers:
        if name not in before:
            print(f"provision: reader {name} added (reads {args.prefix}/{_contract.ALERTS}/# only)")
        if name not in users:
            print(f"provision: reader {name} has no password yet: mosquitto_passwd {passwd} {name}")
    print(f"provision: readers in the ACL: {', '.join(readers) or 'none'}")


def acl(registry: Registry, prefix: str, readers: list[str]) -> str:
    """The broker's ACL: per-user blocks only (a pattern line would apply to every user, medics included)."""
    out = ["# Generated by checkpoint-gateway provision: per-user blocks, no pattern lines.", "",
           f"user {GATEWAY_USER}", f"topic readwrite {prefix}/#", ""]  # fmt: skip
    for r in readers:
        out += [f"user {r}", f"topic read {prefix}/{_contract.ALERTS}/#", ""]
    for (site, node), e in sorted(registry.nodes.items()):
        if e.retired is not None:
            continue
        out.append(f"user {e.user}")
        out += [f"topic write {_contract.topic(prefix, site, node, k)}" for k in _contract.UPLINK]
        out += [f"topic read {_contract.topic(prefix, site, node, k)}" for k in _contract.DOWNLINK]
        out.append("")
    return "\n".join(out)


def node_config(args: argparse.Namespace, site: str, node: str, password: str, key: str) -> dict[str, Any]:
    cfg: Any = firmware.module("config")
    broker = {"host": args.broker_host, "port": args.port, "tls": True, "cafile": CA_NAME, "user": user(site, node),
              "password": password, "keepalive_s": 60, "hmac_key": key}  # fmt: skip
    given = {"site": site, "node": node, "prefix": args.prefix, "broker": broker,
             "wifi": {"ssid": WIFI_PLACEHOLDER, "password": WIFI_PLACEHOLDER}}  # fmt: skip
    full, reason = cfg.validate(given)
    if full is None:
        raise GatewayError(f"{site}/{node}: the node would refuse this config: {reason}")
    return dict(full)


def _issue(args: argparse.Namespace, reg: Registry, site: str, node: str, now: int) -> None:
    """A new key and password for a node: registry, passwd, its config.json and CA file."""
    if not args.broker_host or args.ca is None or not args.ca.is_file():
        raise GatewayError("--broker-host and --ca (an existing CA certificate file) are needed to issue node configs")
    key, password = new_key(), secrets.token_urlsafe(24)
    reg.nodes[(site, node)] = NodeEntry(site, node, key, user(site, node), now)
    _passwd(args.dir / "mosquitto" / "passwd", "-b", str(args.dir / "mosquitto" / "passwd"), user(site, node), password)
    d = args.dir / "nodes" / site / node
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    _secret_file(d / "config.json", json.dumps(node_config(args, site, node, password, key), indent=1) + "\n")
    shutil.copy(args.ca, d / CA_NAME)
    print(f"provision: {site}/{node}: {d / 'config.json'} (fill in wifi, then make deploy NODE_CONFIG=...)")


def run(args: argparse.Namespace) -> int:
    now = int(time.time() * 1000)
    (args.dir / "mosquitto").mkdir(parents=True, exist_ok=True, mode=0o700)
    path = args.dir / "registry.json"
    reg = Registry.load(path) if path.exists() else Registry()
    passwd, acl_path = args.dir / "mosquitto" / "passwd", args.dir / "mosquitto" / "acl"
    before, readers = _readers(args, acl_path)
    if not (args.dir / "gateway.password").exists():
        password = secrets.token_urlsafe(24)
        _passwd(passwd, "-b", str(passwd), GATEWAY_USER, password)
        _secret_file(args.dir / "gateway.password", password + "\n")
    for text in args.nodes:
        site, node = _name(text)
        if reg.active(site, node) is None:
            _issue(args, reg, site, node, now)
    for text in args.rotate:
        site, node = _name(text)
        if reg.active(site, node) is None:
            raise GatewayError(f"--rotate {text}: not an active node in {path}")
        _issue(args, reg, site, node, now)
    for text in args.retire:
        site, node = _name(text)
        if reg.active(site, node) is None:
            raise GatewayError(f"--retire {text}: not an active node in {path}")
        reg.retire(site, node, now)
        _passwd(passwd, "-D", str(passwd), user(site, node))
        print(f"provision: {site}/{node} retired (broker user removed; reload the broker)")
    reg.save(path)
    _say_readers(args, before, readers, passwd)
    acl_path.write_text(acl(reg, args.prefix, readers) + "\n")
    return 0

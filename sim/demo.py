"""`make demo`: the simulation of sim/run.py with the web console, the notifier and a webhook receiver beside it.

    python -m sim.demo [--duration SIMULATED_S] [--cluster N]   (scripts/demo.sh; Ctrl-C stops everything)

Before the simulation, in var/demo: a new SQLite database holding the scenario's posts (name, county, time zone,
by `checkpoint-gateway sites set`) and a demo medic and coordinator with a password made for this run
(`checkpoint-gateway users add`); a webhook receiver on a free loopback port that prints each notification as it
arrives; the console (`checkpoint-gateway web`) and the notifier (`checkpoint-gateway notify`), configured by
var/demo/gateway.toml (fever and node alerts routed to the receiver, once in Chinese, once in English as an SMS
gateway would get it). Then `checkpoint-sim run` on that database, its summary as always. After it: the
notifier's outbox drained, the console asked (as the medic, through its JSON API) what is on the board, and, in a
terminal, the console kept up until Ctrl-C. Every process it started stops on exit, Ctrl-C or SIGTERM.

Logs: var/demo/console.log, var/demo/notify.log (beside the simulator's firmware.log and gateway-*.log).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gateway import alerts
from gateway.store import open_store
from sim import run
from sim.process import REPO, stop
from sim.scenario import ScenarioError, load

SCENARIO = Path("sim/scenarios/demo.toml")
WORKDIR = Path("var/demo")
DB_URL = f"sqlite:///{WORKDIR / 'gateway.db'}"  # as `checkpoint-sim run` names it, so its summary reads the same
COUNTY, ZONE = "demo-county", "Asia/Shanghai"
POSTS = {"bridge-north": "北桥检查站 Bridge North", "tollgate-room": "收费站筛查室 Tollgate Room"}
MEDIC, COORDINATOR = "demo-medic", "demo-coordinator"
DRAIN_TIMEOUT_S = 30.0  # real seconds to wait, after the simulation, for the notifier to send what is queued
RECEIVERS = (("medics-zh", "zh-CN", "long"), ("duty-en", "en", "short"))
_REF = re.compile(r"([a-z_]+):([^:\s]+):([^:\s]+):\S*#r?\d+\s*$")  # an alert id (kind:site:node:...) and #n


class DemoError(Exception):
    """A part of the demo could not start; the message says which and where to look."""


class Receiver:
    """A webhook on 127.0.0.1 (stdlib HTTP server) taking Apprise's json:// POSTs ({"title", "message"}) and
    printing each on stderr as it arrives: receiver (the URL's path), kind, site, node, then the text."""

    def __init__(self) -> None:
        self.received = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.show(self.path.strip("/"), raw)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, receiver: str) -> str:
        return f"json://127.0.0.1:{self.port}/{receiver}"

    def show(self, receiver: str, raw: bytes) -> None:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"message": raw.decode("utf-8", "replace")}
        title, message = str(body.get("title", "")), str(body.get("message", ""))
        kind, site, node = about(message)
        now = datetime.now().astimezone()
        lines = [f"[webhook {now:%H:%M:%S %Z}] to {receiver}: {kind} at {site}, node {node}"]
        lines += [f"    {line}" for line in (title, *message.splitlines()) if line]
        with self._lock:
            self.received += 1
            print("\n".join(lines), file=sys.stderr, flush=True)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def about(message: str) -> tuple[str, str, str]:
    """(kind, site, node) from the notification's ref at its end (`fever:SITE:NODE:SEQ#1`, `...#r2` for a
    reminder); ("?", "?", "?") for a message without one (a backlog's summary line)."""
    ref = _REF.search(message)
    return (ref[1], ref[2], ref[3]) if ref else ("?", "?", "?")


@dataclass
class Extras:
    """What the demo starts beside the simulation, and stops in `close` (each child in a session of its own,
    so Ctrl-C reaches the demo, which stops them in order)."""

    receiver: Receiver
    console: subprocess.Popen[str] | None = None
    notifier: subprocess.Popen[str] | None = None
    url: str = ""

    def close(self) -> None:
        stop(self.notifier)
        stop(self.console)
        self.receiver.close()


def gateway_cmd(command: str, *args: str) -> list[str]:
    """`checkpoint-gateway COMMAND --config var/demo/gateway.toml ARGS...` (the options belong to the command)."""
    return [sys.executable, "-m", "gateway", command, "--config", str(WORKDIR / "gateway.toml"), *args]


def write_config(receiver: Receiver) -> None:
    """var/demo/gateway.toml: the database, the console's session key, and [notify] routing fever and node
    alerts to the receiver, in Chinese (long form) and English (short form)."""
    text = [
        "# Written by make demo (sim/demo.py) for this run.",
        f'[store]\ndb = "{DB_URL}"',
        f'[report]\ntimezone = "{ZONE}"',
        f'[web]\nsession_secret_file = "{WORKDIR / "web-session.key"}"',
        "[notify]\npoll_interval_s = 0.5",
    ]
    for name, locale, form in RECEIVERS:
        text.append(f'[notify.receivers.{name}]\nurl = "{receiver.url(name)}"\nlocale = "{locale}"\nform = "{form}"')
    kinds = json.dumps(list(alerts.KINDS))  # every kind the gateway raises, post_offline and population_drift too
    text.append(f"[[notify.routes]]\nkinds = {kinds}\nreceivers = {json.dumps([r[0] for r in RECEIVERS])}")
    (WORKDIR / "gateway.toml").write_text("\n\n".join(text) + "\n")


def prepare(sites: list[str], password: str) -> None:
    """A new database with the posts and the two demo accounts, through the CLI as an operator would."""
    for old in WORKDIR.glob("gateway.db*"):
        old.unlink()
    env = {**os.environ, "CHECKPOINT_USER_PASSWORD": password}
    steps = [["sites", "set", s, "--timezone", ZONE, "--name", POSTS.get(s, s), "--county", COUNTY] for s in sites]
    steps.append(["users", "add", MEDIC, "--role", "medic", "--sites", ",".join(sites), "--locale", "zh-CN"])
    steps.append(["users", "add", COORDINATOR, "--role", "coordinator", "--county", COUNTY, "--locale", "en"])
    for step in steps:
        done = subprocess.run(gateway_cmd(*step), capture_output=True, text=True, cwd=REPO, env=env)
        if done.returncode != 0:
            raise DemoError(f"checkpoint-gateway {' '.join(step[:2])} failed: {done.stderr.strip()}")


def start(extras: Extras) -> None:
    """The console (its URL read from its first line), then the notifier with links to it."""
    with open(WORKDIR / "console.log", "w") as log:
        extras.console = subprocess.Popen(gateway_cmd("web", "--port", "0"), stdout=subprocess.PIPE, stderr=log,
                                          text=True, cwd=REPO, start_new_session=True)  # fmt: skip
    line = extras.console.stdout.readline() if extras.console.stdout else ""
    if "console on " not in line:
        raise DemoError(f"the console did not start (see {WORKDIR / 'console.log'}): {line.strip()}")
    extras.url = line.split("console on ", 1)[1].split(" ", 1)[0].rstrip("/")
    env = {**os.environ, "CHECKPOINT_WEB_PUBLIC_URL": extras.url}
    with open(WORKDIR / "notify.log", "w") as log:
        extras.notifier = subprocess.Popen(gateway_cmd("notify"), stdout=log, stderr=subprocess.STDOUT, text=True,
                                           cwd=REPO, env=env, start_new_session=True)  # fmt: skip


def drain(extras: Extras, timeout: float) -> int:
    """Wait until the notifier has routed every notification and sent every delivery; returns how many are
    still waiting after `timeout` real seconds (0: all sent)."""
    store = open_store(DB_URL, create=False)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with store.transaction() as tx:
                ob = tx.outbox()
                left = len(ob.unrouted(1000)) + sum(ob.count_pending(r) for r in ob.waiting())
            if not left or time.monotonic() > deadline or (extras.notifier and extras.notifier.poll() is not None):
                return left
            time.sleep(0.1)  # polling the outbox for the notifier's progress
    finally:
        store.close()


def board(url: str, password: str) -> tuple[int, int]:
    """(open, closed) alerts on the demo medic's board, asked through the console's JSON API."""

    def call(method: str, path: str, body: dict[str, str] | None = None, token: str = "") -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{url}{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as reply:
            raw = reply.read()
        return json.loads(raw) if raw else None

    token = call("POST", "/api/v1/token", {"username": MEDIC, "password": password})["token"]
    seen = call("GET", "/api/v1/alerts", token=token)
    call("DELETE", "/api/v1/token", token=token)
    return len(seen["open"]), len(seen["closed"])


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, help="simulated seconds (default: the scenario's)")
    p.add_argument("--cluster", type=int, metavar="N", help="on the cluster path: a RabbitMQ cluster of N members")
    args = p.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)  # as Ctrl-C: everything stopped on the way out
    WORKDIR.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    extras = Extras(Receiver())
    try:
        sites = [s.name for s in load(SCENARIO).sites]
        write_config(extras.receiver)
        prepare(sites, password)
        start(extras)
        say(f"console: {extras.url}/ (log in as {MEDIC} or {COORDINATOR}, password for this run: {password})")
        say(f"notifications: fever and node alerts to a webhook on 127.0.0.1:{extras.receiver.port}, printed below"
            f" as they arrive; routes in {WORKDIR / 'gateway.toml'}")  # fmt: skip
        say(f"logs: {WORKDIR / 'console.log'}, {WORKDIR / 'notify.log'}")
        return finish(extras, password, simulate(args))
    except (DemoError, ScenarioError) as e:
        print(f"make demo: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("make demo: interrupted; console, notifier and webhook receiver stopped", file=sys.stderr)
        return 130
    finally:
        extras.close()


def simulate(args: argparse.Namespace) -> int:
    """`checkpoint-sim run` on the demo's database; it prints its summary."""
    sim_args = ["--scenario", str(SCENARIO), "--workdir", str(WORKDIR), "--db", DB_URL]
    sim_args += ["--duration", f"{args.duration:g}"] if args.duration is not None else []
    sim_args += ["--cluster", str(args.cluster)] if args.cluster else []
    parser = argparse.ArgumentParser(prog="checkpoint-sim run")
    run.add_arguments(parser)
    return run.main(parser.parse_args(sim_args))


def finish(extras: Extras, password: str, code: int) -> int:
    """After the summary: the outbox drained, the console asked, and in a terminal the console kept up."""
    if code == 130:
        raise KeyboardInterrupt
    left = drain(extras, DRAIN_TIMEOUT_S)
    shown = extras.receiver.received
    waiting = f"; {left} still waiting (see {WORKDIR / 'notify.log'})" if left else ""
    print(f"  notifications:     {shown} received by the webhook receiver{waiting}")
    opened, closed = board(extras.url, password)
    print(f"  console:           {extras.url}/ answered: {MEDIC}'s board has {opened} open and {closed} closed alerts")
    print(f"  console logins:    {MEDIC} (medic), {COORDINATOR} (coordinator), password {password}", flush=True)
    if sys.stdin.isatty():
        say(f"the console stays up at {extras.url}/ to look around; Ctrl-C stops it")
        signal.pause()
    return code


if __name__ == "__main__":
    raise SystemExit(main())

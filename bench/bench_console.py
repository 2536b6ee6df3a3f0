"""Console latency: from a node's publish of an elevated scan to the fever alert in a medic's browser, at 500
scans/s of background load (another process, four nodes), against the MQTT alert latency in the same run.

The chain: node -> Mosquitto -> gateway process (stores the scan, raises the alert, publishes it on
`checkpoint/v1/alerts/{site}`) -> the SQLite file -> the console process (`checkpoint-gateway web`, which reads
new alert events every [web] poll_interval_s) -> server-sent events -> Debian's chromium (Playwright) -> the
board re-rendered. Three arrival times per probe, all on this machine's wall clock:
  mqtt  the alert on the alerts topic, in the probing process (what bench_alert_latency.py measures);
  sse   the `alert` server-sent event in the page (an EventSource of the bench's own, beside the page's);
  board the alert's row in the board's DOM (a MutationObserver), i.e. what the medic sees.
Run: .venv/bin/python bench/bench_console.py [--samples 100] [--poll 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gw_common import child, percentile

from gateway.store import open_store
from gateway.store.base import SiteRow, UserRow
from gateway.web.auth import hash_password
from sim.broker import DEFAULT_CONFIG, Broker
from sim.process import GatewayProcess
from testkit.node import scan_payload

FEVER = {"t_site_c": 39.0, "t_amb_c": 24.0, "t_core_c": 39.5, "verdict": "elevated"}
PASSWORD = "bench password 1"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
WATCH = """() => {
  window.__sse = {}; window.__row = {};
  const source = new EventSource('/events');
  source.addEventListener('alert', (e) => { const a = JSON.parse(e.data);
    if (a.event === 1 && !(a.seq in window.__sse)) { window.__sse[a.seq] = Date.now(); } });
  new MutationObserver(() => {
    for (const tr of document.querySelectorAll('#board tr.alert[data-seq]')) {
      if (!(tr.dataset.seq in window.__row)) { window.__row[tr.dataset.seq] = Date.now(); } }
  }).observe(document.getElementById('board'), {childList: true, subtree: true});
  return new Promise((ok) => source.addEventListener('open', () => ok(true)));
}"""


def prepare(db_url: str) -> None:
    """The site and a medic of it, before any process starts."""
    store = open_store(db_url)
    now = int(time.time() * 1000)
    with store.transaction() as tx:
        tx.save_site(SiteRow("hot", "Hot post", "east", "Asia/Shanghai"))
        tx.save_user(UserRow("medic", "medic", hash_password(PASSWORD), "hot", "", "", 0, now, now))
    store.close()


def console(db_url: str, tmp: Path, poll: float) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "CHECKPOINT_WEB_SESSION_SECRET_FILE": str(tmp / "session.key"),
           "CHECKPOINT_WEB_POLL_INTERVAL_S": str(poll)}  # fmt: skip
    cmd = [sys.executable, "-m", "gateway", "web", "--port", "0", "--db", db_url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "console on " not in line:
        raise RuntimeError(f"the console did not start: {line!r}")
    return proc, line.split("console on ")[1].split("/ ")[0]


def log_in(page: Any, url: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", "medic")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/alerts")
    page.wait_for_selector("#live-state.on")
    page.evaluate(WATCH)


def measure(port: int, page: Any, samples: int, interval_s: float) -> dict[str, list[float]]:
    """Per elevated scan, ms from publish to: the MQTT alert, the SSE event, the row on the board."""
    arrivals: queue.Queue[tuple[Any, float]] = queue.Queue()
    subscribed = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-console-node")
    c.on_message = lambda cl, u, m: arrivals.put((json.loads(m.payload), time.time()))
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe("checkpoint/v1/alerts/hot", 1)
    subscribed.wait(10)
    out: dict[str, list[float]] = {"mqtt": [], "sse": [], "board": []}
    spacing = random.Random(12)
    for seq in range(1, samples + 1):
        t0 = time.time()
        c.publish("checkpoint/v1/hot/h1/scan", json.dumps(scan_payload("hot", "h1", seq, **FEVER)), qos=1)
        while True:
            body, t = arrivals.get(timeout=10)
            if body.get("seq") == seq and body.get("event") == 1:
                break
        page.wait_for_function(f"window.__row['{seq}'] !== undefined && window.__sse[{seq}] !== undefined",
                               timeout=10_000)  # fmt: skip
        sse, row = page.evaluate(f"[window.__sse[{seq}], window.__row['{seq}']]")
        out["mqtt"].append((t - t0) * 1000)
        out["sse"].append(sse - t0 * 1000)
        out["board"].append(row - t0 * 1000)
        time.sleep(spacing.uniform(0.5, 1.5) * interval_s)  # spacing the probes, off the console's poll phase
    c.disconnect()
    c.loop_stop()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--poll", type=float, default=0.5, help="[web] poll_interval_s of the console (default 0.5)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp_dir:
        tmp = Path(tmp_dir)
        conf = tmp / "broker.conf"
        conf.write_text(DEFAULT_CONFIG.read_text() + "set_tcp_nodelay true\n")  # as deploy/mosquitto does
        db_url = f"sqlite:///{tmp / 'console.db'}"
        prepare(db_url)
        with Broker(config=conf) as broker, sync_playwright() as pw:
            got, rate = run(broker.port, pw, db_url, tmp, args)
    return report(got, rate, args)


def run(port: int, pw: Any, db_url: str, tmp: Path, args: argparse.Namespace) -> tuple[dict[str, list[float]], float]:
    """Gateway, console, browser and background load up; the probes; everything stopped."""
    interval = max(0.2, args.poll)
    seconds = args.samples * (interval + args.poll) + 15
    gateway = GatewayProcess(port, db_url, tmp, instance="gw-console")
    gateway.start()
    web, url = console(db_url, tmp, args.poll)
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    load = child("publish", "--port", str(port), "--site", "load", "--nodes", "4",
                 "--rate", str(args.rate), "--seconds", str(seconds))  # fmt: skip
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        log_in(page, url)
        time.sleep(2)  # let the background load reach its rate before probing
        t_start = time.time()
        got = measure(port, page, args.samples, interval)
        return got, stored_rate(tmp / "console.db", t_start, time.time())
    finally:
        if load.poll() is None:
            load.kill()
        browser.close()
        web.terminate()
        web.wait(10)
        gateway.terminate()


def stored_rate(db: Path, t_start: float, t_end: float) -> float:
    """Background scans the gateway stored per second while the probes ran."""
    with sqlite3.connect(db) as c:
        sql = "SELECT COUNT(*) FROM scans WHERE site = 'load' AND received_at >= ? AND received_at < ?"
        n = c.execute(sql, (int(t_start * 1000), int(t_end * 1000))).fetchone()[0]
    return float(n) / (t_end - t_start)


def report(got: dict[str, list[float]], achieved: float, args: argparse.Namespace) -> int:
    m50, m99 = percentile(got["mqtt"], 50), percentile(got["mqtt"], 99)
    print(f"console latency at {achieved:,.0f} scans/s background, {args.samples} elevated scans, "
          f"[web] poll_interval_s {args.poll}:")  # fmt: skip
    print(f"  publish -> MQTT alert (baseline): p50 {m50:.1f} ms, p99 {m99:.1f} ms")
    for key, what in (("sse", "SSE event in the page"), ("board", "row on the board   ")):
        p50, p99 = percentile(got[key], 50), percentile(got[key], 99)
        print(f"  publish -> {what}:  p50 {p50:.1f} ms, p99 {p99:.1f} ms "
              f"(ratio to MQTT p50 {p50 / m50:.0f}x, p99 {p99 / m99:.0f}x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Gateway fixtures. Every gateway test uses its own broker (`private_broker`): the gateway keeps a persistent
session, which on a shared broker would queue every later test's traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.store import Store, open_store
from sim.broker import Broker
from sim.watch import Watcher
from testkit.gateway import InProcessGateway, make_config
from testkit.node import NodePublisher
from testkit.service import ServiceLoop


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gateway.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


@pytest.fixture
def loop(store: Store) -> Iterator[ServiceLoop]:
    """The service loop on an in-memory broker with a FakeClock (testkit/service.py), on `store`."""
    running = ServiceLoop(store).start()
    yield running
    running.stop()


@pytest.fixture
def start_gateway(private_broker: Broker, db_url: str) -> Iterator[Callable[..., InProcessGateway]]:
    started: list[InProcessGateway] = []

    def start(clock: Callable[[], int] | None = None, overrides: dict[str, Any] | None = None) -> InProcessGateway:
        cfg = make_config(private_broker.port, db_url, overrides=overrides)
        gw = InProcessGateway(cfg, clock).start()
        started.append(gw)
        return gw

    yield start
    for gw in started:
        if gw.thread.is_alive():
            gw.stop()


@pytest.fixture
def nodes(private_broker: Broker) -> Iterator[Callable[[str, str], NodePublisher]]:
    made: list[NodePublisher] = []

    def node(site: str, name: str) -> NodePublisher:
        n = NodePublisher(private_broker.port, site, name).connect()
        made.append(n)
        return n

    yield node
    for n in made:
        n.close(clean=False)


@pytest.fixture
def watch(private_broker: Broker) -> Iterator[Callable[[str], Watcher]]:
    made: list[Watcher] = []

    def w(topic: str) -> Watcher:
        made.append(Watcher(private_broker.port, topic))
        return made[-1]

    yield w
    for m in made:
        m.close()

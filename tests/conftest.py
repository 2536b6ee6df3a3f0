"""Fixtures shared by every test: a private Mosquitto from the project's config on a free loopback port, a
throwaway PostgreSQL cluster (one per session, started only when a test asks for it), and the FDA clinical data
file the screening tests read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import dataset as lab_dataset
from sim.broker import Broker
from testkit.postgres import Cluster
from testkit.rabbitmq import RabbitCluster


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """One Mosquitto for the whole session; tests isolate themselves by site/node names."""
    with Broker() as b:
        yield b


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One PostgreSQL cluster for the whole session (initdb + pg_ctl as the postgres user, free loopback port);
    each test takes a database of its own with `postgres.database()`."""
    with Cluster() as pg:
        yield pg


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitCluster]:
    """One three-member RabbitMQ cluster (MQTT plugin, quorum queues) for the session, started only when a test
    asks for it (about 20 s on two cores); tests that kill a member start it again before they end."""
    with RabbitCluster() as rmq:
        print(f"\nrabbitmq: 3 members joined in {rmq.startup_s:.1f} s")
        yield rmq


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each backend: the same test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    cluster: Cluster = request.getfixturevalue("postgres")
    return cluster.database()


@pytest.fixture
def private_broker() -> Iterator[Broker]:
    """A Mosquitto of this test's own, for tests that stop, kill or restart it."""
    with Broker() as b:
        yield b


@pytest.fixture(scope="session")
def dataset() -> Path:
    """The FDA facial/oral temperature file (../shared/data beside the repo, or $CHECKPOINT_DATA_DIR)."""
    path = lab_dataset.default_dataset_path()
    if not path.is_file():
        pytest.fail(f"the FDA study file is missing at {path}: set CHECKPOINT_DATA_DIR (see docs/screening.md)")
    return path


@pytest.fixture(scope="session")
def subjects(dataset: Path) -> list[lab_dataset.Subject]:
    """Every subject of the FDA file, read once for the session."""
    return lab_dataset.read_dataset(dataset)

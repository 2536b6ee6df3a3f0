"""Fixtures shared by every test: a private Mosquitto from the project's config on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sim.broker import Broker


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """One Mosquitto for the whole session; tests isolate themselves by site/node names."""
    with Broker() as b:
        yield b


@pytest.fixture
def private_broker() -> Iterator[Broker]:
    """A Mosquitto of this test's own, for tests that stop, kill or restart it."""
    with Broker() as b:
        yield b

"""Fixtures shared by every test: a private Mosquitto from the project's config on a free loopback port, and the
FDA clinical data file the screening tests read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import dataset as lab_dataset
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

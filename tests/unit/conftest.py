"""Fixtures the unit tests' folders share: a private state directory and a root logger left as found."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG_STATE_HOME under tmp_path: local clusters' files and crash logs of the test live there."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


@pytest.fixture
def restored_root_logging() -> Iterator[None]:
    """The root logger's handlers and level are put back after the test (the CLI's callback configures
    it on the runner's streams)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def fresh_root_logging(restored_root_logging: None) -> None:
    """The test starts with no root handlers (as a fresh process does; other tests may leave some on
    closed streams); they are put back afterwards."""
    logging.getLogger().handlers.clear()

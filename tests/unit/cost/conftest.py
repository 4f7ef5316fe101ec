from __future__ import annotations

from pathlib import Path

import pytest
from cost_testkit import PRICES_2026_11_29, write_chart, write_eksctl

from gpu_inference.domain.prices import PriceBook, load_price_book
from gpu_inference.domain.stack import StackInputs, load_stack


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refreshed price files live in the user state dir: keep the user's out of these tests."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture
def prices() -> PriceBook:
    return load_price_book("us-east-1", PRICES_2026_11_29)


@pytest.fixture
def eksctl(tmp_path: Path) -> Path:
    return write_eksctl(tmp_path / "cluster.yaml")


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    return write_chart(tmp_path / "chart")


@pytest.fixture
def stack(eksctl: Path, chart: Path) -> StackInputs:
    return load_stack(eksctl, chart, [])

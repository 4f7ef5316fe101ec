from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(state_home: Path, fresh_root_logging: None) -> None:
    """Every local cluster a test touches lives under tmp_path; each test starts with no root handlers."""

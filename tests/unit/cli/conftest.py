from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(state_home: Path, restored_root_logging: None) -> None:
    """Local clusters' files and crash logs of these tests live under tmp_path; the CLI's callback
    configures the root logger on the runner's streams, so it is restored afterwards."""

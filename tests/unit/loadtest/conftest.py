from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from loadtest_testkit import (
    ClusterBackend,
    ClusterState,
    OpenAIState,
    RouteServer,
    openai_routes,
    write_kubeconfig,
)


@pytest.fixture
def openai_state() -> OpenAIState:
    return OpenAIState()


@pytest.fixture
def openai_server(openai_state: OpenAIState) -> Iterator[RouteServer]:
    server = RouteServer(openai_routes(openai_state))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def cluster_state() -> ClusterState:
    return ClusterState()


@pytest.fixture
def backend(cluster_state: ClusterState) -> ClusterBackend:
    """A cluster frozen in `cluster_state`; tests that script time replace backend.script."""
    return ClusterBackend(lambda: cluster_state)


@pytest.fixture
def backend_server(backend: ClusterBackend) -> Iterator[RouteServer]:
    server = RouteServer(backend)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def kubeconfig(tmp_path: Path, backend_server: RouteServer) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", backend_server.url)

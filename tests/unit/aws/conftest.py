"""Fixtures for the AWS tests: moto (the only thing mocked is AWS), fake CLI executables on PATH,
and a recording runner for the adapters. Nothing here reaches the network or a real account."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_testkit import REGION, FakeBin, Recorder


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials so nothing can talk to a real account, whatever the developer's shell has."""
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    # moto would otherwise build ~10k public AMIs per test (seconds); tests register what they need
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture(scope="session")
def model_loader() -> Any:
    """botocore's JSON model loader, shared so each test's fresh session skips re-reading the models."""
    from botocore.loaders import create_loader

    return create_loader()


@pytest.fixture
def boto_session(moto: None, model_loader: Any) -> Any:
    """A fresh boto3 session created inside mock_aws (so moto intercepts it), with the shared loader."""
    import boto3
    import botocore.session

    core = botocore.session.Session()
    core.register_component("data_loader", model_loader)
    return boto3.session.Session(botocore_session=core, region_name=REGION)


@pytest.fixture
def clients(boto_session: Any) -> Any:
    from gpu_inference.adapters.aws import AwsClients

    return AwsClients(REGION, session=boto_session)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeBin:
    """PATH = only the fake bin dir, so a real eksctl/kubectl/helm can never be reached."""
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", str(d))
    monkeypatch.delenv("GPU_INFERENCE_TOOLS_BIN", raising=False)
    return FakeBin(d, tmp_path / "calls.jsonl")

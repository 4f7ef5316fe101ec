"""boto3 clients for one region, with explicit timeouts and retries.

Everything AWS-facing takes an `AwsClients`, so tests run the same code under moto's mock_aws.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from gpu_inference.errors import AwsError

log = logging.getLogger(__name__)

_CONFIG = Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 8, "mode": "standard"})

CREDENTIALS_FIX = (
    "configure AWS credentials (`aws configure`, `aws sso login`, or AWS_PROFILE/AWS_ACCESS_KEY_ID) "
    "for the account that should hold the cluster"
)


class AwsClients:
    """A cache of boto3 clients for one account and region."""

    def __init__(self, region: str, *, profile: str | None = None, session: Any = None) -> None:
        self.region = region
        self._session = session or boto3.session.Session(profile_name=profile, region_name=region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, region_name=self.region, config=_CONFIG)
        return self._clients[service]

    def available_regions(self, service: str = "eks") -> list[str]:
        return list(self._session.get_available_regions(service))


def error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


@contextmanager
def aws_call(action: str, fix: str = CREDENTIALS_FIX) -> Iterator[None]:
    """Turn botocore errors into AwsError naming the action and the fix."""
    try:
        yield
    except botocore.exceptions.NoCredentialsError as exc:
        raise AwsError(action, "no AWS credentials found", CREDENTIALS_FIX) from exc
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        msg = exc.response.get("Error", {}).get("Message", str(exc))
        if code in {
            "AccessDenied",
            "AccessDeniedException",
            "UnauthorizedOperation",
            "UnrecognizedClientException",
        }:
            raise AwsError(
                action, f"{code}: {msg}", f"grant the caller permission for {action}, or {CREDENTIALS_FIX}"
            ) from exc
        raise AwsError(action, f"{code}: {msg}", fix) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise AwsError(action, str(exc), fix) from exc


def paginate(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    """All items of a paginated list call."""
    out: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        out.extend(page.get(key, []))
    return out


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


Sleep = Callable[[float], None]

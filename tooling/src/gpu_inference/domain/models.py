"""The base models the domain's pydantic models derive from, and what their validators and readers share."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from gpu_inference.errors import ConfigError

__all__ = ["FrozenModel", "StrictModel", "read_json_model", "set_keys"]

M = TypeVar("M", bound=BaseModel)


class FrozenModel(BaseModel):
    """A model whose instances cannot change once built (and can be hashed)."""

    model_config = ConfigDict(frozen=True)


class StrictModel(FrozenModel):
    """A frozen model that refuses unknown fields: for documents read from files."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_json_model(
    path: Path, model: type[M], *, setting: str, name: str, missing_fix: str, invalid_fix: str
) -> M:
    """A JSON document this tool wrote (report.json, calibration.json), read into `model`.

    A missing file, or one that does not validate, is a one-line ConfigError naming `setting`.
    """
    if not path.is_file():
        raise ConfigError(setting, f"{path} not found", missing_fix)
    try:
        return model.model_validate_json(path.read_text())
    except ValueError as exc:
        raise ConfigError(setting, f"{path} is not a {name} this tool wrote: {exc}", invalid_fix) from exc


def set_keys(pairs: tuple[str, ...]) -> list[str]:
    """The keys of helm `--set` KEY=VALUE pairs; ValueError (for a validator) on one that is not."""
    keys = []
    for p in pairs:
        key, sep, _ = p.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{p!r} is not KEY=VALUE")
        keys.append(key.strip())
    return keys

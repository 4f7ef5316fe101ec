"""The base models the domain's pydantic models derive from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["FrozenModel", "StrictModel"]


class FrozenModel(BaseModel):
    """A model whose instances cannot change once built (and can be hashed)."""

    model_config = ConfigDict(frozen=True)


class StrictModel(FrozenModel):
    """A frozen model that refuses unknown fields: for documents read from files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

"""How many tokens a simulated reply has: the token budget, or a seeded draw of a natural length.

The simulator has no model, so it cannot know when a reply would end. The rule (documented in
docs/gpu-simulator.md):

* ``ignore_eos: true`` (vLLM's sampling parameter): the sequence runs to its budget
  (``max_tokens``), finish_reason ``length``;
* profile output_length ``budget`` (classic): the same for every request;
* profile output_length ``lognormal`` (llm): a natural length ``L`` is drawn from a lognormal
  distribution with the profile's mean and sigma; the reply has ``min(L, budget)`` tokens and
  finish_reason ``stop`` when ``L`` ended it, ``length`` when the budget did. Without
  ``max_tokens`` the budget is what the context leaves (``max_model_len - prompt``, as vLLM does
  for chat; completions default to 16 as in vLLM).

Draws are reproducible: a request that passes an integer ``seed`` gets the same length for the
same seed and choice index; otherwise each replica draws from its own generator, seeded with
the profile's seed and the replica's name, so the same sequence of requests gives the same
lengths.
"""

from __future__ import annotations

import math
import random

from gpu_inference.gpusim.params import Profile

FINISH_STOP = "stop"
FINISH_LENGTH = "length"


class OutputLengths:
    """Seeded reply-length draws for one replica (see the module docstring)."""

    def __init__(self, profile: Profile, key: str = "") -> None:
        self.profile = profile
        self._rng = random.Random(f"{profile.output_length_seed}/{key}")  # noqa: S311 (simulation)
        sigma = profile.output_length_sigma
        # lognormal with the given mean: mu = ln(mean) - sigma^2 / 2
        self._mu = math.log(max(1.0, profile.output_length_mean)) - sigma * sigma / 2
        self._sigma = sigma

    @property
    def draws(self) -> bool:
        """True when lengths are drawn (llm); False when every reply runs to its budget."""
        return self.profile.output_length == "lognormal"

    def natural(self, request_seed: int | None = None, choice: int = 0) -> int:
        """One natural reply length (>= 1 token)."""
        rng = (
            random.Random(f"{self.profile.output_length_seed}/seed/{request_seed}/{choice}")  # noqa: S311
            if request_seed is not None
            else self._rng
        )
        return max(1, round(rng.lognormvariate(self._mu, self._sigma)))

    def length(
        self, budget: int, ignore_eos: bool, request_seed: int | None = None, choice: int = 0
    ) -> tuple[int, str]:
        """(tokens, finish_reason) of one sequence with `budget` tokens allowed."""
        if ignore_eos or not self.draws:
            return budget, FINISH_LENGTH
        n = self.natural(request_seed, choice)
        if n < budget:
            return n, FINISH_STOP
        return budget, FINISH_LENGTH

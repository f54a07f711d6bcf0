"""The domain core at the bottom of every layer: the error tree, the routing
objective (utility, cost normalisation) and the settings. Imports numpy and
pydantic-settings only."""

from __future__ import annotations

from prcore.errors import ConfigError, ProuterError
from prcore.utility import best_llm, normalise_cost, task_min_max, utility

__all__ = ["ConfigError", "ProuterError", "best_llm", "normalise_cost", "task_min_max", "utility"]

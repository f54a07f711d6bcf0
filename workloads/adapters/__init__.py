"""Adapters from public data sets to canonical interaction records."""

from __future__ import annotations

from workloads.adapters.base import AdapterResult

__all__ = ["AdapterResult"]

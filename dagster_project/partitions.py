"""Dynamic partitions: one per user, added by the ``user_partitions_sensor`` from the graph."""

from __future__ import annotations

import dagster as dg

__all__ = ["users_partitions"]

users_partitions = dg.DynamicPartitionsDefinition(name="users")

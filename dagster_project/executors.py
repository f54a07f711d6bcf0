"""Which executor runs the steps of a run: one process (default) or one per step.

``PROUTER_DAGSTER_EXECUTOR``:

* ``in_process`` (default): every step of a run in the run's process. Each step needs
  torch / PyG, whose import costs more than most steps, and on LadybugDB (one embedded
  file, one writer) the steps could not run side by side anyway.
* ``multiprocess``: Dagster's ``multiprocess_executor``, each step in its own process
  and independent steps (embeddings and simulation; the evaluations after training)
  side by side, at most ``PROUTER_DAGSTER_MAX_CONCURRENT`` at once (default: the CPU
  count). Meant for a Neo4j store; on a LadybugDB store it runs one step at a time.
  Needs a persistent instance (``DAGSTER_HOME``). Per-user partitions are runs of their
  own (a backfill launches one run per user, ``max_concurrent_runs`` of the run
  coordinator bounds them); within one process the checkpoint and the export are
  loaded once (:func:`gnn.pipeline.evaluated`).

On Kubernetes or Celery, set the executor in the deployment's run config instead
(``dagster-k8s``'s ``k8s_job_executor``, ``dagster-celery``'s ``celery_executor``):
see README, "Dagster on more processes or machines".
"""

from __future__ import annotations

import os

import dagster as dg

from prcore.errors import ConfigError
from prcore.settings import DEFAULT_STORE

__all__ = ["EXECUTORS", "executor_from_env", "step_concurrency"]

EXECUTORS = ("in_process", "multiprocess")


def executor_from_env() -> dg.ExecutorDefinition:
    """The executor named by ``PROUTER_DAGSTER_EXECUTOR`` (see the module docs)."""
    kind = os.environ.get("PROUTER_DAGSTER_EXECUTOR", "in_process").strip() or "in_process"
    if kind == "in_process":
        return dg.in_process_executor
    if kind != "multiprocess":
        raise ConfigError(
            f"PROUTER_DAGSTER_EXECUTOR={kind!r}; valid executors: {', '.join(EXECUTORS)}"
        )
    return dg.multiprocess_executor.configured({"max_concurrent": step_concurrency()})


def step_concurrency() -> int:
    """Steps run at once by the multiprocess executor: ``PROUTER_DAGSTER_MAX_CONCURRENT``
    (0 or unset: the CPU count), and 1 on a LadybugDB store."""
    raw = os.environ.get("PROUTER_DAGSTER_MAX_CONCURRENT", "0").strip() or "0"
    if not raw.isdigit():
        raise ConfigError(f"PROUTER_DAGSTER_MAX_CONCURRENT={raw!r} is not a whole number")
    store = os.environ.get("PROUTER_STORE", DEFAULT_STORE)
    if store.startswith("ladybug:") or store.endswith(".lbug"):
        return 1  # one embedded file, one writer process
    return int(raw) or (os.cpu_count() or 1)

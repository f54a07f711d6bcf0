"""The data side: interaction data the graph is filled with.

Adapters for public data sets (``adapters``), the canonical/synthetic/adapter
sources behind ingest (``sources``), the paper's user simulations
(``simulate``, ``judge``, ``personas``), the synthetic workload (``synthetic``)
and text embeddings (``embeddings``). Imports ``graphdb`` and ``prcore`` only.
"""

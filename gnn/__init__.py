"""The personalized heterogeneous GNN router: graph building, model, training, evaluation.

Modules: ``data`` (graph store -> arrays, splits), ``graph`` (arrays -> PyG
``HeteroData``), ``neighbours`` (the one k-nearest-neighbour search), ``model``
(the network), ``train`` (fitting, the GNN routers), ``routers`` (the
interface and the baselines), ``evaluate`` / ``experiment`` (metrics,
multi-seed comparisons), ``fewshot`` (new users and LLMs), ``export``
(training subgraphs), ``checkpoint`` (versions, safe checkpoint files),
``pipeline`` (the one train -> checkpoint -> RouterModel -> write-back
sequence), ``writeback`` (predictions and evaluations into the graph),
``serving`` (routing lookups), ``reports``.
"""

import warnings

# torch_geometric 2.8 still calls torch.jit.script at import; the warning is not ours.
warnings.filterwarnings(
    "ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning
)

"""The heterogeneous GNN router (graph building, model, training, evaluation).

Not implemented yet: see the project's issue on the router.
"""

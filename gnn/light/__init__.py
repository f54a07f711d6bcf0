"""The light route path: a trained GNN router served from a snapshot, without torch.

``snapshot`` writes, from a full :class:`gnn.serving.RoutingService`, one ``.npz``
file with everything a route needs (the network weights read at route time, the
users' weights, the per-(task, LLM) prior, the reference outcomes and the graph
context of the explanations), stamped with the store file it came from; and
loads it back, range-checked, as a service whose router is ``router``'s numpy
forward. Nothing here imports torch (checked by ``tests/test_route_light.py``).
"""

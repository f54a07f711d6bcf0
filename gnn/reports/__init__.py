"""Reports of the router: ``results`` (``prouter report``: tables and plots from
``prouter evaluate --json``) and ``model_card`` (one trained version, from the graph)."""

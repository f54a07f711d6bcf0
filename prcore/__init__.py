"""The domain core at the bottom of every layer: the error tree (``errors``), the
routing objective (``utility``: utility, cost normalisation, best LLM) and the one
settings object (``settings``). Imports numpy and pydantic-settings only."""

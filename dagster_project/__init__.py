"""Dagster assets from raw interactions to written-back predictions.

Not implemented yet: see the project's issue on Dagster orchestration.
"""

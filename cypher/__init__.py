"""Cypher text only: the named analytics queries (``*.cypher``) and the schema DDL
(``schema/{ladybug,neo4j}.cypher``), shipped as package data."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CYPHER_DIR"]

CYPHER_DIR = Path(__file__).resolve().parent

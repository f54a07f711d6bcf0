"""Routers: the personalized GNN and the baselines, all behind one interface."""

from __future__ import annotations

from gnn.routers.base import Router

__all__ = ["Router"]

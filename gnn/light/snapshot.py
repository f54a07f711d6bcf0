"""Route snapshots: what a route of a trained GNN router needs, in one checked ``.npz`` file.

:func:`write_snapshot` takes a full :class:`gnn.serving.RoutingService` (its
router a :class:`gnn.train.GNNRouter`) and saves, atomically (temporary file,
``fsync``, rename): the network's route-time weights and the LLMs' encodings
(:data:`gnn.light.router.WEIGHT_NAMES`), each user's weight on quality and the
new users' one, the per-(task, LLM) prior, the task cost ranges, the reference
outcomes and embeddings of the neighbours' messages, the routing data the
explanations and the task inference read (ids, tasks, decisions, judgements,
outcomes, prices, query texts, who asked what), plus a JSON header (strings,
ids, the model version, the stamp). Plain arrays only: loaded with
``allow_pickle=False``.

The stamp is the identity of the embedded store file when the service read it:
``(inode, size, mtime_ns)``. LadybugDB stores are replaced by a rename on every
write (docs/reliability.md), so any write changes it; :func:`load_service`
refuses a snapshot whose stamp differs (:class:`StaleSnapshot`) and one that fails
any check (:class:`BadSnapshot`: shapes, index ranges, finite values, weights in
[0, 1]). The caller then takes the full path.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gnn.checkpoint import checkpoint_path
from gnn.data import RoutingData
from gnn.light.router import WEIGHT_NAMES, LightRouter
from prcore.errors import ProuterError

__all__ = [
    "FORMAT",
    "BadSnapshot",
    "StaleSnapshot",
    "load_service",
    "snapshot_path",
    "store_stamp",
    "write_snapshot",
]

FORMAT = 1
SNAPSHOT_DIR = "route-snapshots"
_MAX_HEADER = 256 * 1024 * 1024  # bytes of the JSON header (query texts included)
_INDEX_ARRAYS = {  # int array -> the id list it indexes
    "query_task": "task_ids",
    "dec_user": "user_ids",
    "dec_query": "query_ids",
    "dec_llm": "llm_ids",
    "pref_user": "user_ids",
    "pref_query": "query_ids",
    "pref_win": "llm_ids",
    "pref_lose": "llm_ids",
    "user_query_rows": "query_ids",
}


_DATA_INDEX = (
    "dec_user",
    "dec_query",
    "dec_llm",
    "pref_user",
    "pref_query",
    "pref_win",
    "pref_lose",
)


class BadSnapshot(ProuterError):
    """A snapshot file that is unreadable or fails a check."""


class StaleSnapshot(ProuterError):
    """A snapshot of another state of the store (or another model) than asked for."""


def store_stamp(store_file: Path) -> list[int] | None:
    """``[inode, size, mtime_ns]`` of an embedded store file; None when it is missing or
    a recovery is pending beside it (a WAL file: a read may change the store)."""
    for suffix in (".wal", ".wal.checkpoint", ".shadow"):
        if Path(str(store_file) + suffix).exists():
            return None
    try:
        st = os.stat(store_file)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _checkpoint_stamp(model_dir: Path, version: str) -> list[int] | None:
    """``[size, mtime_ns]`` of the checkpoint of ``version`` (None: missing or a bad name)."""
    try:
        st = os.stat(checkpoint_path(model_dir, version))
    except (OSError, ProuterError):
        return None
    return [st.st_size, st.st_mtime_ns]


def snapshot_path(model_dir: Path, store_file: Path) -> Path:
    """The snapshot of ``store_file``'s routes, inside ``model_dir`` (named by a hash of
    the store's absolute path)."""
    key = hashlib.sha256(str(Path(store_file).resolve()).encode()).hexdigest()[:20]
    return Path(model_dir) / SNAPSHOT_DIR / f"{key}.npz"


# -- writing --------------------------------------------------------------------------
def write_snapshot(
    service: Any, path: Path, *, stamp: list[int], store_file: Path, latest: bool
) -> None:
    """Save what ``service`` (a :class:`gnn.serving.RoutingService` of a GNN router)
    routes with to ``path`` (see the module docstring); ``latest``: its model is the
    graph's latest. Raises :class:`ProuterError` for a router of another kind."""
    import torch

    router = service.router
    if getattr(router, "name", None) not in ("gnn", "gnn_nonpersonal"):
        raise ProuterError(f"no light path for router {getattr(router, 'name', '?')!r}")
    f, data = router.features, service.data
    if f.query_emb is not data.query_emb and not np.array_equal(f.query_emb, data.query_emb):
        raise ProuterError("the router's reference embeddings are not the graph's")
    state = router.model.state_dict()
    with torch.no_grad():
        router.inference._eval()
        h_l = router.inference._llm_states().cpu().numpy()
    arrays: dict[str, np.ndarray] = {
        name: state[name].detach().cpu().numpy().astype(np.float32) for name in WEIGHT_NAMES
    }
    user_rows = sorted(service._user_queries)
    rows = [service._user_queries[u] for u in user_rows]
    arrays |= {
        "h_l": h_l.astype(np.float32),
        "task_prior": np.asarray(f.task_prior, dtype=np.float32),
        "task_cost_range": np.asarray(f.task_cost_range, dtype=np.float64),
        "ref_perf": np.asarray(f.ref_perf, dtype=np.float64),
        "ref_cost": np.asarray(f.ref_cost, dtype=np.float64),
        "user_weight": np.asarray(service._weights, dtype=np.float32),
        "query_task": data.query_task.astype(np.int64),
        "query_emb": np.asarray(data.query_emb, dtype=np.float32),
        "llm_price": np.asarray(data.llm_price, dtype=np.float64),
        "performance": np.asarray(data.performance, dtype=np.float64),
        "cost": np.asarray(data.cost, dtype=np.float64),
        "dec_reward": np.asarray(data.dec_reward, dtype=np.float64),
        "user_query_users": np.array(user_rows, dtype=np.int64),
        "user_query_counts": np.array([len(r) for r in rows], dtype=np.int64),
        "user_query_rows": np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64),
    }
    for name in _DATA_INDEX:
        arrays[name] = np.asarray(getattr(data, name), dtype=np.int64)
    header = {
        "format": FORMAT,
        "version": service.version,
        "latest": bool(latest),
        "stamp": [int(x) for x in stamp],
        "checkpoint": _checkpoint_stamp(service.model_dir, service.version),
        "store": str(Path(store_file).resolve()),
        "router": router.name,
        "task_ids": list(data.task_ids),
        "llm_ids": list(data.llm_ids),
        "user_ids": list(data.user_ids),
        "query_ids": list(data.query_ids),
        "router_task_ids": list(router.task_ids),
        "router_llm_ids": list(router.llm_ids),
        "query_text": list(service.query_text),
        "warnings": list(service.warnings),
        "neighbours": int(f.k),
        "residual_scale": float(router.inference.residual_scale),
        "prior_weight": float(service._prior_weight),
    }
    arrays["header"] = np.frombuffer(
        json.dumps(header, ensure_ascii=False, allow_nan=False).encode(), dtype=np.uint8
    )
    _check(arrays, header)  # never write what the reader would refuse
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            np.savez(out, **arrays)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- reading --------------------------------------------------------------------------
def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if path.is_symlink() or not path.is_file():
        raise BadSnapshot(f"{path}: no snapshot file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        raw = arrays.pop("header")
        if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > _MAX_HEADER:
            raise BadSnapshot(f"{path}: bad header")
        header = json.loads(raw.tobytes().decode())
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise BadSnapshot(f"{path}: unreadable snapshot ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict):
        raise BadSnapshot(f"{path}: bad header")
    return arrays, header


def _strings(header: dict[str, Any], key: str, *, optional: bool = False) -> list[Any]:
    value = header.get(key)
    ok = isinstance(value, list) and all(
        isinstance(v, str) or (optional and v is None) for v in value
    )
    if not ok:
        raise BadSnapshot(f"header {key!r} is not a list of strings")
    return value  # type: ignore[return-value]


def _check(arrays: dict[str, np.ndarray], header: dict[str, Any]) -> None:
    """Every shape, index and number in range (raises :class:`BadSnapshot`)."""
    if header.get("format") != FORMAT:
        raise BadSnapshot(f"snapshot format {header.get('format')!r}, expected {FORMAT}")
    ids = {k: _strings(header, k) for k in ("task_ids", "llm_ids", "user_ids", "query_ids")}
    for key in ("router_task_ids", "router_llm_ids", "warnings"):
        _strings(header, key)
    if _strings(header, "router_llm_ids") != ids["llm_ids"]:
        raise BadSnapshot("the router's LLMs differ from the data's")
    if not set(header["router_task_ids"]) >= set(ids["task_ids"]):
        raise BadSnapshot("the data has tasks the router does not know")
    texts = _strings(header, "query_text", optional=True)
    if not isinstance(header.get("version"), str) or not header["version"]:
        raise BadSnapshot("no model version")
    stamp = header.get("stamp")
    if not (isinstance(stamp, list) and len(stamp) == 3 and all(type(x) is int for x in stamp)):
        raise BadSnapshot("bad store stamp")
    k = header.get("neighbours")
    if type(k) is not int or not 1 <= k <= 10_000:
        raise BadSnapshot(f"bad neighbour count {k!r}")
    for key in ("residual_scale", "prior_weight"):
        value = header.get(key)
        if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
            raise BadSnapshot(f"{key} {value!r} is not a number in [0, 1]")
    q, m, u = len(ids["query_ids"]), len(ids["llm_ids"]), len(ids["user_ids"])
    t_model = len(header["router_task_ids"])
    if len(texts) != q:
        raise BadSnapshot("query texts do not match the queries")
    w = arrays
    h = _shape(w, "query_out.3.weight", 2)[0]
    d = _shape(w, "query_emb", 2, {0: q})[1]
    expect: dict[str, tuple[int, ...]] = {
        "query_in.weight": (h, d),
        "query_in.bias": (h,),
        "task_emb.weight": (t_model, h),
        "query_out.0.weight": (h, 2 * h),
        "query_out.0.bias": (h,),
        "query_out.3.bias": (h,),
        "prior_weight": (4,),
        "h_l": (m, h),
        "task_prior": (t_model, m, 3),
        "task_cost_range": (t_model, 2),
        "ref_perf": (q, m),
        "ref_cost": (q, m),
        "user_weight": (u,),
        "query_task": (q,),
        "llm_price": (m, 2),
        "performance": (q, m),
        "cost": (q, m),
    }
    pair = 2 * h + 6
    for head in ("perf_head", "cost_head"):
        expect |= {
            f"{head}.0.weight": (h, pair),
            f"{head}.0.bias": (h,),
            f"{head}.3.weight": (1, h),
            f"{head}.3.bias": (1,),
        }
    for name, shape in expect.items():
        if name not in w or w[name].shape != shape:
            got = w[name].shape if name in w else "missing"
            raise BadSnapshot(f"array {name!r}: shape {got}, expected {shape}")
    for name in (*WEIGHT_NAMES, "h_l", "task_prior", "task_cost_range", "query_emb"):
        if w[name].dtype.kind != "f" or not np.isfinite(w[name]).all():
            raise BadSnapshot(f"array {name!r} is not finite floats")
    if not ((w["user_weight"] >= 0) & (w["user_weight"] <= 1)).all():
        raise BadSnapshot("user weights outside [0, 1]")
    for name in ("ref_perf", "ref_cost", "performance", "cost", "llm_price", "dec_reward"):
        if name not in w or w[name].dtype.kind != "f" or np.isinf(w[name]).any():
            raise BadSnapshot(f"array {name!r} is not floats or NaN")
    if (w["cost"] < 0).any() or (w["llm_price"] < 0).any():  # NaN compares False
        raise BadSnapshot("negative costs or prices")
    if (w["task_cost_range"][:, 1] < w["task_cost_range"][:, 0]).any():
        raise BadSnapshot("a task cost range with max < min")
    sizes = {"task_ids": len(ids["task_ids"]), "llm_ids": m, "user_ids": u, "query_ids": q}
    for name, of in _INDEX_ARRAYS.items():
        a = w.get(name)
        if a is None or a.dtype != np.int64 or a.ndim != 1:
            raise BadSnapshot(f"array {name!r} is not int64 indices")
        if len(a) and (a.min() < 0 or a.max() >= sizes[of]):
            raise BadSnapshot(f"array {name!r} indexes outside its {of}")
    n_dec = len(w["dec_user"])
    if not (len(w["dec_query"]) == len(w["dec_llm"]) == len(w["dec_reward"]) == n_dec):
        raise BadSnapshot("decision arrays of different lengths")
    if len({len(w[name]) for name in ("pref_user", "pref_query", "pref_win", "pref_lose")}) != 1:
        raise BadSnapshot("judgement arrays of different lengths")
    users, counts = w.get("user_query_users"), w.get("user_query_counts")
    if (
        users is None
        or counts is None
        or users.dtype != np.int64
        or counts.dtype != np.int64
        or users.shape != counts.shape
        or (len(users) and (users.min() < 0 or users.max() >= u))
        or (counts < 0).any()
        or int(counts.sum()) != len(w["user_query_rows"])
    ):
        raise BadSnapshot("bad user -> queries table")


def _shape(
    w: dict[str, np.ndarray], name: str, ndim: int, fixed: dict[int, int] | None = None
) -> tuple[int, ...]:
    a = w.get(name)
    if a is None or a.ndim != ndim or any(a.shape[i] != n for i, n in (fixed or {}).items()):
        raise BadSnapshot(f"array {name!r} missing or of a wrong shape")
    return a.shape


def load_service(
    path: Path,
    *,
    model_dir: Path,
    stamp: Sequence[int] | None,
    embedder: Any,
    version: str | None = None,
    similar: int = 3,
) -> Any:
    """The :class:`gnn.serving.RoutingService` of the snapshot at ``path`` with a
    :class:`LightRouter`, when its stamp equals ``stamp`` (the store file now) and its
    model is ``version`` (None: the latest) and its checkpoint in ``model_dir`` is the one
    it was made from. Raises :class:`StaleSnapshot` or
    :class:`BadSnapshot` otherwise."""
    from gnn.serving import RoutingService

    if stamp is None:
        raise StaleSnapshot("the store file cannot be stamped")
    arrays, header = _read(path)
    if header.get("stamp") != list(stamp):
        raise StaleSnapshot("the store changed since the snapshot")
    wanted = header.get("version") == version if version else header.get("latest") is True
    if not wanted:
        raise StaleSnapshot(f"the snapshot is of another model ({header.get('version')!r})")
    _check(arrays, header)
    if header.get("checkpoint") != _checkpoint_stamp(model_dir, header["version"]):
        raise StaleSnapshot(f"the checkpoint of {header['version']} changed or is gone")
    ids = {k: header[k] for k in ("task_ids", "llm_ids", "user_ids", "query_ids")}
    q = len(ids["query_ids"])
    data = RoutingData(
        query_ids=ids["query_ids"],
        query_task=arrays["query_task"],
        query_split=np.full(q, "", dtype=object),
        query_emb=arrays["query_emb"],
        task_ids=ids["task_ids"],
        llm_ids=ids["llm_ids"],
        llm_emb=np.zeros((len(ids["llm_ids"]), 0), dtype=np.float32),
        llm_price=arrays["llm_price"],
        performance=arrays["performance"],
        cost=arrays["cost"],
        user_ids=ids["user_ids"],
        user_alpha=np.full(len(ids["user_ids"]), np.nan),
        dec_user=arrays["dec_user"],
        dec_query=arrays["dec_query"],
        dec_llm=arrays["dec_llm"],
        dec_reward=arrays["dec_reward"],
        pref_user=arrays["pref_user"],
        pref_query=arrays["pref_query"],
        pref_win=arrays["pref_win"],
        pref_lose=arrays["pref_lose"],
    )
    router = LightRouter(
        arrays,
        task_ids=header["router_task_ids"],
        llm_ids=header["router_llm_ids"],
        neighbours=header["neighbours"],
        residual_scale=float(header["residual_scale"]),
        prior_weight=float(header["prior_weight"]),
    )
    bounds = np.concatenate([[0], np.cumsum(arrays["user_query_counts"])])
    user_queries = {
        int(user): arrays["user_query_rows"][bounds[i] : bounds[i + 1]]
        for i, user in enumerate(arrays["user_query_users"])
    }
    return RoutingService.assemble(
        version=header["version"],
        data=data,
        router=router,
        embedder=embedder,
        query_text=header["query_text"],
        user_queries=user_queries,
        warnings=header["warnings"],
        model_dir=model_dir,
        similar=similar,
    )

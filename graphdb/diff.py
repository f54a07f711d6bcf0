"""Split rows to write into new, changed and unchanged, against what is stored.

This is what makes writes idempotent and cheap to repeat on every backend: a
re-run of the same ingest finds every row unchanged and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Delta", "delta"]


@dataclass(frozen=True)
class Delta:
    """Rows to create, rows to update (only their values differ), and the rest."""

    new: pa.Table
    changed: pa.Table
    unchanged: int


def delta(rows: pa.Table, existing: pa.Table, key: list[str], values: list[str]) -> Delta:
    """Compare ``rows`` with ``existing`` (same columns) on ``key``.

    A null value in ``rows`` means "unknown" and never counts as a change.
    """
    left = rows.select(key).append_column("__i", pa.array(range(rows.num_rows), pa.int64()))
    right = existing.select(key).append_column(
        "__j", pa.array(range(existing.num_rows), pa.int64())
    )
    pairs = left.join(right, keys=key, join_type="left outer", use_threads=False)
    is_new = pc.is_null(pairs.column("__j"))
    new_index = pairs.filter(is_new).column("__i")
    new = rows.take(pc.take(new_index, pc.sort_indices(new_index)))
    matched = pairs.filter(pc.invert(is_new))
    ours = rows.take(matched.column("__i"))
    theirs = existing.take(matched.column("__j"))
    differs = pa.repeat(False, ours.num_rows)
    for v in values:
        differs = pc.or_(differs, _value_differs(ours.column(v), theirs.column(v)))
    changed = ours.filter(differs)
    return Delta(new, changed, rows.num_rows - new.num_rows - changed.num_rows)


def _value_differs(new: pa.ChunkedArray, old: pa.ChunkedArray) -> pa.Array:
    if pa.types.is_list(new.type):
        fast = _dense_list_differs(new, old)
        if fast is not None:
            return fast
        return pa.array(
            [
                a is not None and a != b
                for a, b in zip(new.to_pylist(), old.to_pylist(), strict=True)
            ],
            type=pa.bool_(),
        )
    return pc.and_(pc.is_valid(new), pc.fill_null(pc.not_equal(new, old), True))


def _dense_list_differs(new: pa.ChunkedArray, old: pa.ChunkedArray) -> pa.Array | None:
    """Vectorised comparison when every list on both sides is non-null and of one length."""
    if new.null_count or old.null_count or len(new) == 0:
        return None
    lengths = pc.unique(
        pa.concat_arrays(
            [pc.list_value_length(new.combine_chunks()), pc.list_value_length(old.combine_chunks())]
        )
    )
    if len(lengths) != 1:
        return None
    width = lengths[0].as_py()
    a = pc.list_flatten(new).to_numpy(zero_copy_only=False).reshape(len(new), width)
    b = pc.list_flatten(old).to_numpy(zero_copy_only=False).reshape(len(old), width)
    return pa.array((a != b).any(axis=1), type=pa.bool_())

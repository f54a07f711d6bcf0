"""64-bit hashes of canonical records' key columns: cross-record checks without the records.

A chunk of validated records is a column table (:data:`RECORD_SCHEMA`); :func:`chunk_keys`
turns it into a few ``uint64`` arrays per record (its query, task, LLM, other LLM and the
whole record) and one *entry* per value that :data:`graphdb.canonical.CONSISTENT` says must
agree between records (the hash of the entity's key and field, and of the value).
:class:`KeyColumns` gathers them over a whole file; two records with different values for
the same entry key are a conflict *candidate*, decided exactly on the records themselves.

Hashes are SipHash (pandas) per value, folded per row; a collision can only make a
candidate that the exact check dismisses, except a value collision (2**-64) hiding a
conflict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graphdb.canonical import CONSISTENT, FIELDS

__all__ = [
    "RECORD_SCHEMA",
    "ChunkKeys",
    "KeyColumns",
    "chunk_keys",
    "id_hashes",
    "in_sorted",
    "pair_hashes",
]

_OUTCOME = ("performance", "cost", "input_tokens", "output_tokens", "response")

_ARROW = {"float": pa.float64(), "int": pa.int64()}
RECORD_SCHEMA = pa.schema([(n, _ARROW.get(f.kind, pa.string())) for n, f in FIELDS.items()])
_MULT = np.uint64(0x9E3779B97F4A7C15)
_SHIFT = np.uint64(29)


def _salt(*parts: object) -> np.uint64:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def _mix(a: np.ndarray, b: np.ndarray | np.uint64) -> np.ndarray:
    """An order-dependent combination of two hash arrays (wrapping uint64 arithmetic)."""
    return ((a ^ (a >> _SHIFT)) * _MULT) ^ b


def _hash(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the value's hash (0 where null) and whether there is a value."""
    present = pc.is_valid(column).to_numpy(zero_copy_only=False)
    text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    filler = "" if text else 0
    values = column.fill_null(filler).to_numpy(zero_copy_only=False)
    if values.dtype == object:
        values = values.astype(object)
    hashes = pd.util.hash_array(values, categorize=False)
    return np.where(present, hashes, np.uint64(0)), present


def id_hashes(ids: Sequence[str] | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Hashes of ids as :class:`ChunkKeys` holds them (never 0, which means none)."""
    column = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else pa.array(ids, pa.string())
    hashes, _ = _hash(column)
    return hashes | np.uint64(1)


def pair_hashes(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """One hash per pair of :func:`id_hashes` (an edge's endpoints)."""
    return _mix(first, second)


def in_sorted(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Which ``values`` are in ``sorted_set`` (sorted ascending)."""
    if sorted_set.size == 0:
        return np.zeros(values.shape, dtype=bool)
    index = np.minimum(np.searchsorted(sorted_set, values), sorted_set.size - 1)
    return sorted_set[index] == values


@dataclass
class ChunkKeys:
    """Key hashes of one chunk's records (``row``: each record's place in the input)."""

    row: np.ndarray  # int64
    query: np.ndarray
    task: np.ndarray
    llm: np.ndarray  # 0: no llm_id
    other: np.ndarray  # 0: no other_llm_id
    text: np.ndarray  # bool: gives query_text
    record: np.ndarray  # the whole record
    entry_key: np.ndarray  # one per value that must agree: (rule, field, key) hash
    entry_value: np.ndarray
    entry_row: np.ndarray
    answered: np.ndarray  # (query, LLM) pair of each record giving an outcome


def chunk_keys(table: pa.Table, rows: np.ndarray) -> ChunkKeys:
    """The key hashes of ``table`` (columns of :data:`RECORD_SCHEMA`) whose records are
    input ``rows``."""
    hashes = {name: _hash(table.column(name)) for name in FIELDS}
    one = np.uint64(1)

    def ids(name: str) -> np.ndarray:
        h, present = hashes[name]
        return np.where(present, h | one, np.uint64(0))

    record = np.zeros(table.num_rows, dtype=np.uint64)
    for name, (h, present) in hashes.items():
        record = _mix(record, np.where(present, h ^ _salt(name), _salt(name, "missing")))
    keys, values, entry_rows = [], [], []
    for rule, (key_fields, value_fields) in enumerate(CONSISTENT):
        given = np.logical_and.reduce([hashes[k][1] for k in key_fields])
        key = np.zeros(table.num_rows, dtype=np.uint64)
        for k in key_fields:
            key = _mix(key, hashes[k][0])
        for field in value_fields:
            h, present = hashes[field]
            chosen = given & present
            keys.append(_mix(key[chosen], _salt(rule, field)))
            values.append(h[chosen])
            entry_rows.append(rows[chosen])
    query, llm = ids("query_id"), ids("llm_id")
    outcome = (llm != 0) & np.logical_or.reduce([hashes[f][1] for f in _OUTCOME])
    return ChunkKeys(
        row=rows,
        query=query,
        task=ids("task_id"),
        llm=llm,
        other=ids("other_llm_id"),
        text=hashes["query_text"][1],
        record=record,
        entry_key=np.concatenate(keys),
        entry_value=np.concatenate(values),
        entry_row=np.concatenate(entry_rows),
        answered=pair_hashes(query[outcome], llm[outcome]),
    )


def _distinct_pairs(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (key, value) pairs, sorted by key then value."""
    order = np.lexsort((values, keys))
    keys, values = keys[order], values[order]
    keep = np.ones(keys.size, dtype=bool)
    keep[1:] = (keys[1:] != keys[:-1]) | (values[1:] != values[:-1])
    return keys[keep], values[keep]


class KeyColumns:
    """:class:`ChunkKeys` of a whole input, gathered chunk by chunk (entries kept distinct)."""

    def __init__(self) -> None:
        self._parts: list[ChunkKeys] = []
        self._entries: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending = 0
        self._compacted = 0

    def add(self, keys: ChunkKeys) -> None:
        """Keep ``keys`` without the entries' rows (their distinct pairs only)."""
        pairs = _distinct_pairs(keys.entry_key, keys.entry_value)
        empty = np.empty(0, dtype=np.uint64)
        self._parts.append(
            ChunkKeys(
                keys.row,
                keys.query,
                keys.task,
                keys.llm,
                keys.other,
                keys.text,
                keys.record,
                empty,
                empty,
                np.empty(0, dtype=np.int64),
                keys.answered,
            )
        )
        self._entries.append(pairs)
        self._pending += pairs[0].size
        if self._pending > max(4_000_000, self._compacted):
            self._compact()

    def _compact(self) -> None:
        if len(self._entries) > 1:
            keys = np.concatenate([k for k, _ in self._entries])
            values = np.concatenate([v for _, v in self._entries])
            self._entries = [_distinct_pairs(keys, values)]
        self._compacted = self._entries[0][0].size if self._entries else 0
        self._pending = 0

    def candidates(self) -> np.ndarray:
        """Entry keys given two or more different values (sorted)."""
        self._compact()
        if not self._entries:
            return np.empty(0, dtype=np.uint64)
        keys = self._entries[0][0]
        return np.unique(keys[1:][keys[1:] == keys[:-1]])

    @staticmethod
    def repeated(hashes: np.ndarray) -> np.ndarray:
        """The hashes that occur more than once (sorted)."""
        ordered = np.sort(hashes)
        return np.unique(ordered[1:][ordered[1:] == ordered[:-1]])

    def columns(self) -> ChunkKeys:
        """Every record's key hashes, in input order (entries left empty)."""
        parts = self._parts
        empty = np.empty(0, dtype=np.uint64)

        def cat(name: str, dtype: type) -> np.ndarray:
            arrays = [getattr(p, name) for p in parts]
            return np.concatenate(arrays) if arrays else np.empty(0, dtype=dtype)

        whole = ChunkKeys(
            cat("row", np.int64),
            cat("query", np.uint64),
            cat("task", np.uint64),
            cat("llm", np.uint64),
            cat("other", np.uint64),
            cat("text", bool),
            cat("record", np.uint64),
            empty,
            empty,
            np.empty(0, dtype=np.int64),
            cat("answered", np.uint64),
        )
        self._parts = [whole]
        return whole

"""gnn.index_files: an approximate index built once is read by the next process, and a file
that is torn, altered or another base's is refused and built again.

Before, every process built its HNSW indexes again: at 1M queries, serving after
training spent about 15 minutes rebuilding the one the write-back had just built.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gnn import index_files, neighbours
from gnn.neighbours import nearest, using
from prcore.settings import DEFAULT_NEIGHBOURS_INDEX_DIR, Settings

REPO = Path(__file__).resolve().parents[2]

_SEARCH = """
import sys
import numpy as np
from gnn.neighbours import nearest
base, queries = np.load(sys.argv[1]), np.load(sys.argv[2])
found = nearest(queries, base, 10)
np.save(sys.argv[3], found.indices)
"""


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, dim))
    x = centres[rng.integers(0, 30, n)] + 0.35 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.usearch"))


@pytest.fixture(autouse=True)
def _no_index_in_memory():
    """Each search below starts as a new process would: no index kept in memory."""
    neighbours._cache.clear()
    yield
    neighbours._cache.clear()


def test_the_next_process_reads_the_saved_index(tmp_path):
    base, queries = _clustered(3000, 16, seed=1), _clustered(200, 16, seed=2)
    np.save(tmp_path / "base.npy", base)
    np.save(tmp_path / "queries.npy", queries)
    folder = tmp_path / "indexes"
    env = os.environ | {
        "PROUTER_NEIGHBOURS": "approx",
        "PROUTER_NEIGHBOURS_INDEX_DIR": str(folder),
    }
    stderr = []
    for run in ("first", "second"):
        done = subprocess.run(
            [sys.executable, "-c", _SEARCH, *(str(tmp_path / f) for f in ("base.npy",
             "queries.npy", f"{run}.npy"))],
            cwd=REPO, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        stderr.append(done.stderr)
    assert "building the index" in stderr[0]
    assert "read the saved index" in stderr[1] and "building" not in stderr[1]
    assert len(_files(folder)) == 1
    np.testing.assert_array_equal(np.load(tmp_path / "first.npy"), np.load(tmp_path / "second.npy"))


def _search(base: np.ndarray, folder: Path | str) -> np.ndarray:
    neighbours._cache.clear()
    with using(mode="approx", index_dir=str(folder)):
        return nearest(base[:100], base, 10).indices


def test_a_torn_or_altered_file_is_removed_and_built_again(tmp_path, capsys):
    base = _clustered(2000, 16, seed=3)
    built = _search(base, tmp_path)
    (path,) = _files(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    capsys.readouterr()
    again = _search(base, tmp_path)
    err = capsys.readouterr().err
    assert "does not match the digest in its name" in err and "building the index" in err
    np.testing.assert_array_equal(again, built)
    (rebuilt,) = _files(tmp_path)  # the altered file is gone, a good one took its place
    assert index_files._file_digest(rebuilt) in rebuilt.name


def test_another_bases_index_is_refused(tmp_path, capsys):
    """A file under this base's name but built on other vectors (same shape): its digest
    and header pass, its vectors do not."""
    base, other = _clustered(2000, 16, seed=4), _clustered(2000, 16, seed=5)
    expected = _search(base, tmp_path / "mine")
    _search(other, tmp_path)
    (theirs,) = _files(tmp_path)
    (mine,) = _files(tmp_path / "mine")
    stem = mine.name[: -len(".usearch")].rsplit("-", 1)[0]
    theirs.rename(tmp_path / f"{stem}-{index_files._file_digest(theirs)}.usearch")
    capsys.readouterr()
    np.testing.assert_array_equal(_search(base, tmp_path), expected)
    assert "its vectors are not this base's" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"not an index" * 100])
def test_a_file_that_is_no_index_is_refused(tmp_path, capsys, content):
    base = _clustered(500, 8, seed=6)
    expected = _search(base, tmp_path / "good")
    (good,) = _files(tmp_path / "good")
    stem = good.name[: -len(".usearch")].rsplit("-", 1)[0]
    bad = tmp_path / f"{stem}-x.usearch"
    bad.write_bytes(content)
    bad = bad.rename(tmp_path / f"{stem}-{index_files._file_digest(bad)}.usearch")
    capsys.readouterr()
    np.testing.assert_array_equal(_search(base, tmp_path), expected)
    err = capsys.readouterr().err
    assert f"ignoring the saved index {bad.name}" in err
    assert not bad.exists()


def test_the_folder_keeps_the_indexes_used_last(tmp_path):
    """Explicit times (not the clock): the first index is used last, the others in order."""
    bases = [_clustered(300, 8, seed=10 + i) for i in range(index_files.KEEP + 2)]
    written: dict[Path, int] = {}
    for i, base in enumerate(bases):
        _search(base, tmp_path)
        for path in _files(tmp_path):
            written.setdefault(path, i)
            stamp = time.time() + 10**6 if written[path] == 0 else written[path]
            os.utime(path, (stamp, stamp))
    first = next(p for p, i in written.items() if i == 0)
    newest = {p for p, i in written.items() if i > len(bases) - index_files.KEEP}
    assert set(_files(tmp_path)) == {first} | newest
    assert len(newest) == index_files.KEEP - 1


def test_a_folder_that_cannot_be_written_is_a_warning(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    base = _clustered(500, 8, seed=7)
    found = _search(base, blocker / "indexes")
    exact = nearest(base[:100], base, 10, mode="exact").indices
    assert (found[:, 0] == exact[:, 0]).all()
    assert "could not save the index" in capsys.readouterr().err


def test_indexes_are_kept_by_default_and_an_empty_setting_keeps_none(monkeypatch, tmp_path):
    monkeypatch.delenv("PROUTER_NEIGHBOURS_INDEX_DIR", raising=False)
    assert Settings.load().neighbours_index_dir == DEFAULT_NEIGHBOURS_INDEX_DIR
    monkeypatch.setenv("PROUTER_NEIGHBOURS_INDEX_DIR", "")
    assert neighbours.settings_config().index_dir == ""
    monkeypatch.chdir(tmp_path)
    _search(_clustered(500, 8, seed=8), "")
    assert not list(tmp_path.rglob("*.usearch"))

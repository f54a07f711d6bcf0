"""Embedding throughput: texts/s of ``workloads.embeddings.Embedder`` on this machine.

Prints the sentence-transformers import time, the model load time, then for
batch sizes 32, 64 and 128: cold throughput (empty cache: every text goes
through the model) and warm throughput (a new Embedder on the filled cache
file: all hits, the model is never loaded). The texts are ~2,000 generated,
distinct prompts of mixed length (short questions, paragraphs, long multi-part
prompts that pass the model's 256-token limit). When RouterBench is present
under ``--data-dir`` (``routerbench/*.csv``), the first 1,000 prompts are timed
too (5-shot ARC prompts: long, truncated to 256 tokens by the model).

    .venv/bin/python benchmarks/embedding_throughput.py
    .venv/bin/python benchmarks/embedding_throughput.py --batch-sizes 64 --texts 500
"""

from __future__ import annotations

import argparse
import ast
import csv
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

_SUBJECTS = [
    "photosynthesis", "the French Revolution", "binary search trees", "compound interest",
    "the water cycle", "TCP congestion control", "the Krebs cycle", "Bayesian inference",
    "supply and demand", "plate tectonics", "the Pythagorean theorem", "garbage collection",
    "the Treaty of Versailles", "gradient descent", "black holes", "the immune system",
    "SQL joins", "the Roman Republic", "climate feedback loops", "public-key cryptography",
]  # fmt: skip
_ASKS = [
    "Explain {s} to a twelve-year-old.", "What is the main idea behind {s}?",
    "Give three common misconceptions about {s}.", "Summarize {s} in two sentences.",
    "Why does {s} matter in practice?", "Compare {s} with {t}.",
    "Write a short quiz question about {s}.", "How would you teach {s} in one lesson?",
]  # fmt: skip
_TASKS = [
    "Write a Python function that returns the {n}th Fibonacci number without recursion.",
    "A train leaves at {h}:00 travelling {n} km/h; another leaves an hour later at {m} km/h. "
    "When does the second catch up?",
    "Translate into German: 'The meeting on {s} has been moved to Thursday.'",
    "Sarah has {n} apples and gives {m} to each of her {h} friends. How many are left?",
    "Fix the bug: `for i in range(len(xs)): xs.remove(xs[i])` raises IndexError for {n} items.",
    "Classify the sentiment of this review: 'The lecture on {s} was long but surprisingly clear.'",
]  # fmt: skip
_FILLER_TEXT = (
    "Please answer carefully and show your reasoning step by step. Assume the reader has "
    "a basic background but no specialist training. Cite the key definitions you rely on, "
    "state any assumptions explicitly, and finish with a one-line answer. If the question is "
    "ambiguous, say which reading you chose and why. Keep the tone neutral and precise."
)
_FILLER = _FILLER_TEXT.split()


def generate_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct prompts: ~60% one-liners, ~30% paragraphs, ~10% long (>200 tokens)."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        s, t = rng.sample(_SUBJECTS, 2)
        nums = {"n": rng.randint(3, 90), "m": rng.randint(2, 9), "h": rng.randint(1, 12)}
        kind = rng.random()
        if kind < 0.6:
            text = rng.choice(_ASKS + _TASKS).format(s=s, t=t, **nums)
        elif kind < 0.9:
            parts = [rng.choice(_ASKS).format(s=s, t=t)]
            parts += [rng.choice(_TASKS).format(s=s, **nums) for _ in range(rng.randint(1, 2))]
            parts.append(" ".join(rng.sample(_FILLER, rng.randint(15, 35))))
            text = " ".join(parts)
        else:
            parts = [f"Context: we are studying {s} and {t}."]
            for i in range(rng.randint(6, 12)):
                ask = rng.choice(_ASKS + _TASKS).format(s=rng.choice(_SUBJECTS), t=t, **nums)
                parts.append(f"({i + 1}) {ask}")
            parts.append(" ".join(rng.sample(_FILLER, len(_FILLER))))
            text = "\n".join(parts)
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def routerbench_prompts(data_dir: Path, limit: int) -> list[str]:
    """The first ``limit`` prompts of ``routerbench/*.csv`` (files in name order)."""
    csv.field_size_limit(sys.maxsize)
    prompts: list[str] = []
    for path in sorted((data_dir / "routerbench").glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                value = ast.literal_eval(row["prompt"])
                prompts.append("\n".join(value) if isinstance(value, list) else str(value))
                if len(prompts) >= limit:
                    return prompts
    return prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000, help="generated texts (default 2000)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("PROUTER_DATA_DIR", REPO.parent / "shared" / "data")),
        help="folder holding routerbench/ (default: <repo>/../shared/data)",
    )
    parser.add_argument("--routerbench", type=int, default=1000, help="prompts (0: skip)")
    parser.add_argument(
        "--model",
        default=os.environ.get("PROUTER_EMBEDDING_MODEL"),
        help="model setting (default: $PROUTER_EMBEDDING_MODEL or the bundled all-MiniLM-L6-v2)",
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from workloads.embeddings import DEFAULT_MODEL, Embedder

    model = args.model or DEFAULT_MODEL
    corpora = {"generated": generate_texts(args.texts)}
    if args.routerbench and (args.data_dir / "routerbench").is_dir():
        corpora["routerbench"] = routerbench_prompts(args.data_dir, args.routerbench)
    elif args.routerbench:
        print(f"(RouterBench not found under {args.data_dir}: skipped)")

    first = Embedder(model, device=args.device)  # checks the setting
    t0 = time.perf_counter()
    _ = first.model  # imports sentence-transformers (and torch), then loads
    first_s = time.perf_counter() - t0
    probe = Embedder(model, device=args.device)
    t0 = time.perf_counter()
    _ = probe.model  # the libraries are imported now: the model load alone
    load_s = time.perf_counter() - t0
    del first
    import sentence_transformers
    import torch

    probe.embed(["warm-up " + t for t in corpora["generated"][:32]], progress=False)

    print(f"model: {probe.model_id} on {args.device}, dim {probe.dim}")
    print(
        f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs"
    )
    print(f"first load (imports sentence-transformers + torch): {first_s:.1f} s")
    print(f"model load (libraries already imported): {load_s:.2f} s")
    for name, texts in corpora.items():
        chars = sum(map(len, texts)) / len(texts)
        print(f"\n{name}: {len(texts)} texts, mean {chars:.0f} chars")
        print(f"{'batch':>6} {'cold texts/s':>13} {'cold s':>8} {'warm texts/s':>13} {'warm s':>8}")
        for bs in args.batch_sizes:
            with tempfile.TemporaryDirectory() as tmp:
                cache = Path(tmp) / "cache.sqlite"
                cold_e = Embedder(model, cache_path=cache, batch_size=bs, device=args.device)
                cold_e._model = probe.model  # share the loaded model: time encoding only
                t0 = time.perf_counter()
                cold_e.embed(texts, progress=False)
                cold_s = time.perf_counter() - t0
                assert cold_e.misses == len(set(texts))
                cold_e.close()
                warm_e = Embedder(model, cache_path=cache, batch_size=bs, device=args.device)
                t0 = time.perf_counter()
                warm_e.embed(texts, progress=False)
                warm_s = time.perf_counter() - t0
                assert warm_e.misses == 0 and warm_e._model is None
                warm_e.close()
            n = len(texts)
            print(f"{bs:>6} {n / cold_s:>13.0f} {cold_s:>8.2f} {n / warm_s:>13.0f} {warm_s:>8.3f}")


if __name__ == "__main__":
    main()

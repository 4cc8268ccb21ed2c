"""Throughput of generator.validate.kubeschema: documents validated per second over a mixed corpus (median of 5 runs)."""

from __future__ import annotations

import copy
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator.upstream.crds import resolve_crd_dir  # noqa: E402 (runs as a script, without an install)
from generator.validate.kubeschema import Validator  # noqa: E402

CORPUS = ROOT / "tests" / "schema_corpus"


def corpus(size: int) -> list[dict]:
    """The valid and broken test documents, renamed copies until there are `size` of them."""
    base = [d for f in sorted(CORPUS.rglob("*.yaml")) if "not-valid-yaml" not in f.name
            for d in yaml.safe_load_all(f.read_text()) if isinstance(d, dict)]
    docs = []
    while len(docs) < size:
        for d in base[: size - len(docs)]:
            d = copy.deepcopy(d)
            if isinstance(d.get("metadata"), dict) and isinstance(d["metadata"].get("name"), str):
                d["metadata"]["name"] += f"-{len(docs)}"
            docs.append(d)
    return docs


def main(size: int = 400, runs: int = 5) -> None:
    start = time.perf_counter()
    validator = Validator("1.28", resolve_crd_dir(None, ROOT))
    docs = corpus(size)
    for i, d in enumerate(docs):  # warm-up: builds every validator once
        validator.validate("bench.yaml", i, d)
    print(f"setup + warm-up: {time.perf_counter() - start:.2f} s for {len(docs)} documents")
    rates, findings = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        findings = sum(len(validator.validate("bench.yaml", i, d)) for i, d in enumerate(docs))
        rates.append(len(docs) / (time.perf_counter() - t))
    print(f"{statistics.median(rates):.0f} documents/s (median of {runs}; {findings} findings per run; "
          f"min {min(rates):.0f}, max {max(rates):.0f})")


if __name__ == "__main__":
    main()

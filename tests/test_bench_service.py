"""The CI version of bench/bench_service.py: correctness only, no timings.

`ser serve` and `mlflow models serve`, each on a free loopback port, get 20 requests from 2 concurrent
clients (demo clips, and every tenth a truncated WAV or a Git LFS pointer stub), with the same small
model: every good answer must equal the in-process predictor's, every bad one must be a clean error,
and both servers must still be up at the end. The full run (400 requests, 16 clients, timings and
memory) is in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_both_servers_answer_concurrent_clients_correctly(demo_corpus, tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import bench_service
    finally:
        sys.path.remove(str(ROOT / "bench"))
    clips = Path(demo_corpus["tess"]).parent
    out = tmp_path / "results.json"
    status = bench_service.main(["--requests", "20", "--clients", "2", "--no-timings", "--n-clips", "8",
                                 "--window-s", "3", "--clips", str(clips), "--json", str(out)])
    results = json.loads(out.read_text())
    assert [r["server"] for r in results] == ["ser serve", "mlflow models serve"]
    for r in results:
        assert r["problem_list"] == [] and r["requests"] == 20 and r["up_at_end"], r
    assert status == 0

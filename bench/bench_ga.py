"""GA fitness: the whole population scored in one matrix product versus one
sklearn ``f1_score`` call per individual.

    python bench/bench_ga.py [--models 7] [--samples 2000] [--population 50] [--repeat 5]

Same random probabilities and weights for both, results checked equal. Also
times one whole ``ga_search_weights`` at the seed's scale (population 50,
40 generations, 5 restarts). Record the output in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
from sklearn.metrics import f1_score

from speech_emotion.ensemble import GAConfig, _PopulationScorer, ga_search_weights


def per_individual(P: np.ndarray, y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """The straightforward fitness: weighted average then sklearn, one individual at a time."""
    labels = np.unique(y)
    return np.array([
        f1_score(y, np.tensordot(w, P, axes=1).argmax(axis=1), labels=labels, average="macro", zero_division=0)
        for w in W
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=7)
    parser.add_argument("--samples", type=int, default=2000)  # the seed's validation split: 2022
    parser.add_argument("--population", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, args.samples)
    P = rng.dirichlet(np.ones(7), size=(args.models, args.samples))
    P[:, np.arange(args.samples), y] += rng.uniform(0, 0.25, size=(args.models, 1))  # models of varying skill
    W = rng.dirichlet(np.ones(args.models), size=args.population)
    scorer = _PopulationScorer(P, y)
    np.testing.assert_allclose(scorer(W), per_individual(P, y, W), rtol=1e-12)

    base, ours = [], []
    for _ in range(args.repeat):  # interleaved so machine noise hits both alike
        t = time.perf_counter(); per_individual(P, y, W); base.append(time.perf_counter() - t)
        t = time.perf_counter(); scorer(W); ours.append(time.perf_counter() - t)
    b, o = statistics.median(base), statistics.median(ours)

    config = GAConfig(population_size=50, generations=40, restarts=5, seed=0)
    t = time.perf_counter()
    result = ga_search_weights(P, y, config)
    whole = time.perf_counter() - t

    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    print(f"models {args.models}, samples {args.samples}, population {args.population}, repeats {args.repeat} (median)")
    print(f"per-individual sklearn f1: {1000 * b:.1f} ms per generation")
    print(f"population in one product: {1000 * o:.1f} ms per generation")
    print(f"speed-up: {b / o:.1f}x")
    print(f"whole GA (pop 50, 40 generations, 5 restarts): {whole:.2f} s, best F1 {result.fitness:.4f}")


if __name__ == "__main__":
    main()

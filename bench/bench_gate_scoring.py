"""What registration and the promotion gate pay to score a run's predictor on its test audio.

    .venv/bin/python bench/bench_gate_scoring.py [RUN_NAME] [--repeat 2]   # default: the latest completed training run

``register_model`` scores the run's predictor on the test split's audio for the model card
(``speech_emotion.promotion.probabilities_on``: the files decoded, featurised and run through every
member, as ``ser predict`` would); ``promote_model`` used to score it again. Interleaved, on the
same clips, in one process with librosa and the models already warm:

- ``predict_paths(batch_files=32)`` (the default of ``ser predict``): one pass per 32 files, each
  starting openSMILE's process when a member needs functionals and running every network once;
- ``predict_paths(batch_files=256)`` (what ``probabilities_on`` uses now): one pass for up to 256 files.

Prints the seconds of each and checks that the probabilities are identical. Reads the ZenML store of
``ZENML_CONFIG_PATH`` (the Makefile's).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", help="training run name or id (default: the latest completed)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    from pipelines.run_report import find_run

    run = find_run(args.run)
    predictor = run.steps["build_predictor"].outputs["predictor"][0].load()
    test = run.steps["extract_test_features"].outputs["features"][0].load()
    paths = list(map(str, test.utterance_ids))
    print(f"run {run.name}: predictor {predictor.name} ({predictor.kind}), {len(paths)} test clips")
    predictor.predict_paths(paths[:2])  # warm-up: librosa, the networks' first traces
    times: dict[int, list[float]] = {32: [], 256: []}
    probs: dict[int, np.ndarray] = {}
    for _ in range(args.repeat):
        for batch_files in times:
            start = time.perf_counter()
            table = predictor.predict_paths(paths, batch_files=batch_files)
            times[batch_files].append(time.perf_counter() - start)
            probs[batch_files] = table[list(predictor.classes)].to_numpy()
    same = np.array_equal(probs[32], probs[256])
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}; probabilities identical: {same}")
    for batch_files, ts in times.items():
        print(f"batch_files={batch_files}: median {statistics.median(ts):.2f} s ({', '.join(f'{t:.2f}' for t in ts)})")
    old, new = 2 * statistics.median(times[32]), statistics.median(times[256])
    print(f"registration + gate: before (two passes at 32) {old:.1f} s, now (one at 256) {new:.1f} s: {old / new:.2f}x")


if __name__ == "__main__":
    main()

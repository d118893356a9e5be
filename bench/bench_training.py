"""CNN2D-LSTM training throughput: the project's input path against a plain ``model.fit(numpy)``.

    .venv/bin/python bench/bench_training.py --width seed --batches 4 --rounds 2
    .venv/bin/python bench/bench_training.py --width demo --batches 16 --rounds 3 [--jit] [--threads 2]

The same model (``--width seed``: Table 3's hyperparameters; ``demo``: configs/demo.yaml's widths)
and the same random 128 x 251 log-mel clips. Per round, interleaved, one epoch of ``--batches``
batches through each path:

- project: the clips in a memory-mapped ``.npy`` file, read through ``speech_emotion.datasets.make_dataset``
  (shuffled indices, a batch gathered per step);
- baseline: the clips as an in-RAM NumPy array, ``model.fit(x, y, batch_size=..., shuffle=True)``.

A warm-up epoch of each path comes first (graph tracing). Prints samples/s per round, the medians
and their ratio (project / baseline); ``--jit`` compiles the train step with XLA, ``--threads``
sets TensorFlow's intra- and inter-op thread pools.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEMO_WIDTH = {"filters_first": 8, "filters_next": 16, "lstm_units": 16, "conv_blocks": 3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", choices=["seed", "demo"], default="seed")
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--jit", action="store_true", help="model.compile(jit_compile=True): XLA")
    ap.add_argument("--threads", type=int, default=0, help="intra/inter-op threads (0: TensorFlow's default)")
    args = ap.parse_args()

    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras

    from speech_emotion.models import get_family
    from speech_emotion.datasets import make_dataset

    keras.utils.set_random_seed(0)
    family = get_family("cnn2d_lstm")
    hp = family.hparams.from_dict({} if args.width == "seed" else DEMO_WIDTH)
    n = args.batches * args.batch_size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 128, 251)).astype(np.float32)
    y = (np.arange(n) % 7).astype(np.int64)
    model = family.build((128, 251), 7, hp)
    if args.jit:
        model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"], jit_compile=True)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", x)
        np.save(f"{tmp}/y.npy", y)
        xm, ym = np.load(f"{tmp}/x.npy", mmap_mode="r"), np.load(f"{tmp}/y.npy", mmap_mode="r")

        def project() -> None:
            model.fit(make_dataset(xm, ym, args.batch_size, True, 0), epochs=1, shuffle=False, verbose=0)

        def baseline() -> None:
            model.fit(x, y, batch_size=args.batch_size, epochs=1, shuffle=True, verbose=0)

        paths = {"project": project, "baseline": baseline}
        for fn in paths.values():  # warm-up: tracing
            fn()
        rates: dict[str, list[float]] = {k: [] for k in paths}
        for r in range(args.rounds):
            for name, fn in (paths.items() if r % 2 == 0 else reversed(paths.items())):
                start = time.perf_counter()
                fn()
                rates[name].append(n / (time.perf_counter() - start))
                print(f"round {r} {name}: {rates[name][-1]:.1f} samples/s", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}; commit {commit.strip()}; TF {tf.__version__}")
    print(f"cnn2d_lstm width={args.width} ({model.count_params()} params), batch {args.batch_size} x "
          f"{args.batches} batches, jit={args.jit}, threads={args.threads or 'default'}")
    print(f"project {med['project']:.1f} samples/s, baseline model.fit(numpy) {med['baseline']:.1f} samples/s, "
          f"ratio {med['project'] / med['baseline']:.3f}")


if __name__ == "__main__":
    main()

"""The scaling curve: wall time and peak memory of features, scaling and one epoch of CNN2D-LSTM
as the number of clips grows (issue 10).

    python bench/bench_scaling.py [SIZES ...]        # default: 1000 4000 16000
        [--workers 2] [--epochs 1] [--clips-dir DIR] [--out bench/results/scaling]
    python bench/bench_scaling.py --report-from LOG   # table, CSV and plot from a run's printed rows

The project's own code paths, on the same synthetic clips for every size:

1. ``features``: ``speech_emotion.features.extract_features`` on wav files (no feature cache,
   ``--workers`` processes for every split, however small: not the pipeline's in-process fallback
   under ``MIN_CLIPS_PER_WORKER``, so that the sizes compare), once per split as the
   pipeline's feature step does (train / val / test = 65 / 20 / 15 %, the demo profile's fractions),
   streamed into memory-mapped ``.npy`` files in a folder per split, as the step does into its
   artifact's folder (``--in-memory``: the arrays in RAM, as before issue 10).
2. ``scaling``: ``FeatureScaler.fit`` on train, ``transform`` of the three splits (the pipeline's
   scaling step) into a folder per split; the unscaled sets are then dropped, as at a step boundary.
3. ``train``: ``speech_emotion.training.train_model``, CNN2D-LSTM at the demo profile's width
   (``configs/demo.yaml``: 8/16 filters, 3 conv blocks, LSTM 16; kernel 3, learning rate 1e-3 from
   its search space), batch 16, ``--epochs`` epochs (default 1) on train with val.

Every size runs in a fresh Python process, so peaks do not carry over. Memory is the resident set
of that process plus all its descendants (the extraction workers), summed, sampled with psutil
every 20 ms; the peak per stage and overall are reported, with ``ru_maxrss`` of the process and of
its largest child as a cross-check. The resident set counts the pages of memory-mapped files that
are in the page cache (clean once written back: the kernel drops them under pressure), so the
anonymous part (resident minus file-backed and shared pages, psutil's ``rss - shared``), the memory
the process cannot give back, is reported beside it.

Clips: plain numpy-synthesised "speech-like" tones (a gliding fundamental with harmonics, a
syllable-rate envelope, noise), 1-7 s, at the four corpora's native rates (16 kHz, 24414 Hz,
44.1 kHz, 48 kHz), written as 16-bit WAVs with soundfile. They measure cost, not accuracy.
Generated once into ``--clips-dir`` (a temporary folder unless given; reused if already there)
and not timed.

Prints a table; writes ``scaling.csv`` and ``scaling.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RATES = (16000, 24414, 44100, 48000)  # CREMA-D, TESS, SAVEE, RAVDESS
CORPORA = ("crema", "tess", "savee", "ravdess")
DURATION_S = (1.0, 7.0)
SPLIT = (0.65, 0.20, 0.15)
#: CNN2D-LSTM at the demo profile's width (configs/demo.yaml: families.cnn2d_lstm + its search space's first choice)
DEMO_CNN2D = {"filters_first": 8, "filters_next": 16, "lstm_units": 16, "conv_blocks": 3,
              "kernel_size": 3, "learning_rate": 0.001}
DEMO_BATCH = 16
MB = 1024 * 1024
STAGES = ("features", "scaling", "train")


# --------------------------------------------------------------------------- clips

def _clip_path(folder: Path, i: int) -> Path:
    return folder / f"{i // 1000:03d}" / f"clip{i:06d}.wav"


def synth_clip(i: int) -> tuple[np.ndarray, int]:
    """Clip ``i``: deterministic, speech-like (gliding f0 + harmonics, syllable envelope, noise)."""
    rng = np.random.default_rng(i)
    sr = RATES[i % len(RATES)]
    dur = rng.uniform(*DURATION_S)
    t = np.arange(int(dur * sr), dtype=np.float64) / sr
    f0 = rng.uniform(100, 250) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, np.pi)), 0, None)
    y = 0.2 * y * envelope + 0.01 * rng.standard_normal(t.size)
    return y.astype(np.float32), sr


def make_clips(folder: Path, n: int) -> list[str]:
    """The first ``n`` clips in ``folder``, synthesising those not there yet."""
    import soundfile as sf

    paths = []
    for i in range(n):
        path = _clip_path(folder, i)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            y, sr = synth_clip(i)
            tmp = path.with_suffix(".part")
            sf.write(tmp, y, sr, subtype="PCM_16", format="WAV")
            os.replace(tmp, path)  # a killed run leaves no half-written clip behind
        paths.append(str(path))
    return paths


# --------------------------------------------------------------------------- memory

class TreeMemory:
    """Peak resident memory of this process and its descendants (summed), sampled in a thread."""

    def __init__(self, interval_s: float = 0.02):
        import psutil

        self._proc = psutil.Process()
        self._interval = interval_s
        self._stop = threading.Event()
        self.stage_peak: dict[str, int] = {}
        self.stage_anon_peak: dict[str, int] = {}
        self.stage: str | None = None
        self.peak = self.anon_peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> tuple[int, int]:
        """(resident, anonymous) bytes of the process tree; anonymous = resident - file-backed/shared."""
        import psutil

        total = anon = 0
        for proc in (self._proc, *self._proc.children(recursive=True)):
            try:
                info = proc.memory_info()
            except psutil.Error:  # a worker that just exited
                continue
            total += info.rss
            anon += info.rss - info.shared
        return total, anon

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval)

    def sample(self) -> None:
        value, anon = self.rss()
        self.peak = max(self.peak, value)
        self.anon_peak = max(self.anon_peak, anon)
        if self.stage is not None:
            self.stage_peak[self.stage] = max(self.stage_peak.get(self.stage, 0), value)
            self.stage_anon_peak[self.stage] = max(self.stage_anon_peak.get(self.stage, 0), anon)

    def start(self) -> "TreeMemory":
        self._thread.start()
        return self

    def enter(self, stage: str) -> None:
        self.stage = stage
        self.sample()

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------- one size (child process)

def run_size(n: int, clips_dir: Path, workers: int, epochs: int, in_memory: bool = False) -> dict:
    import gc
    import logging
    import resource

    import keras  # noqa: F401  (imported before the baseline: its cost is the same at every size)

    from speech_emotion.config import ModelConfig, TrainingConfig
    from speech_emotion.features import FeatureParams, FeatureScaler, extract_features
    from speech_emotion.training import train_model

    logging.basicConfig(level=logging.WARNING)
    paths = [str(_clip_path(clips_dir, i)) for i in range(n)]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise SystemExit(f"{len(missing)} clips missing under {clips_dir} (first: {missing[0]})")
    labels = [i % 7 for i in range(n)]
    corpus = [CORPORA[i % len(CORPORA)] for i in range(n)]
    order = np.random.default_rng(0).permutation(n)
    cut1, cut2 = int(SPLIT[0] * n), int((SPLIT[0] + SPLIT[1]) * n)
    splits = {"train": np.sort(order[:cut1]), "val": np.sort(order[cut1:cut2]), "test": np.sort(order[cut2:])}
    params = FeatureParams()  # the seed's: 16 kHz, 8 s, log-mel 128 x 251, chroma tuning on

    work = tempfile.TemporaryDirectory(prefix="ser-scaling-arrays-")  # the artifacts' folders

    def folder(name: str) -> Path | None:
        if in_memory:
            return None
        path = Path(work.name, name)
        path.mkdir()
        return path

    gc.collect()
    mem = TreeMemory().start()
    baseline, baseline_anon = mem.rss()
    times: dict[str, float] = {}

    mem.enter("features")
    start = time.perf_counter()
    raw = {name: extract_features([paths[i] for i in idx], [labels[i] for i in idx], [corpus[i] for i in idx],
                                  params=params, cache_dir=None, workers=workers, progress=False,
                                  min_clips_per_worker=1, folder=folder(f"raw_{name}"))
           for name, idx in splits.items()}
    times["features"] = time.perf_counter() - start

    mem.enter("scaling")
    start = time.perf_counter()
    scaler = FeatureScaler.fit(raw["train"], logmel_scaling="element")
    scaled = {name: scaler.transform(fs, folder=folder(f"scaled_{name}")) for name, fs in raw.items()}
    times["scaling"] = time.perf_counter() - start
    del raw
    gc.collect()

    mem.enter("train")
    start = time.perf_counter()
    trained = train_model(
        scaled["train"], scaled["val"],
        ModelConfig(family="cnn2d_lstm", hparams=DEMO_CNN2D),
        TrainingConfig(epochs=epochs, batch_size=DEMO_BATCH, early_stopping_patience=4, seed=0),
        progress=False,
    )
    times["train"] = time.perf_counter() - start
    mem.stop()
    assert len(trained.history["loss"]) == epochs
    del scaled
    gc.collect()
    work.cleanup()

    self_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    child_max = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    logmel_bytes = n * params.n_mels * params.n_frames * 4
    return {
        "clips": n,
        "train_clips": len(splits["train"]),
        **{f"{s}_s": round(times[s], 3) for s in STAGES},
        "total_s": round(sum(times.values()), 3),
        "baseline_rss_mb": round(baseline / MB, 1),
        **{f"{s}_peak_mb": round(mem.stage_peak.get(s, 0) / MB, 1) for s in STAGES},
        "peak_rss_mb": round(mem.peak / MB, 1),
        "baseline_anon_mb": round(baseline_anon / MB, 1),
        **{f"{s}_anon_peak_mb": round(mem.stage_anon_peak.get(s, 0) / MB, 1) for s in STAGES},
        "peak_anon_mb": round(mem.anon_peak / MB, 1),
        "arrays": "in memory" if in_memory else "memory-mapped",
        "ru_maxrss_self_mb": round(self_max / MB, 1),
        "ru_maxrss_largest_child_mb": round(child_max / MB, 1),
        "logmel_mb": round(logmel_bytes / MB, 1),
        "workers": workers,
        "epochs": epochs,
    }


# --------------------------------------------------------------------------- report

def _fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def summarise(rows: list[dict]) -> list[str]:
    """Per-clip times, linearity, memory growth.

    Time grows linearly when the marginal cost per clip, (t[k] - t[k-1]) / (n[k] - n[k-1]) between
    consecutive sizes, stays the same: the fixed costs (worker start-up, model build) fall out of it.
    """
    lines = []
    first, last = rows[0], rows[-1]
    clips = lambda r, stage: r["train_clips"] if stage == "train" else r["clips"]  # noqa: E731
    for stage in (*STAGES, "total"):
        unit = "train clip" if stage == "train" else "clip"
        per = [r[f"{stage}_s"] / clips(r, stage) * 1000 for r in rows]
        line = f"{stage:9s} ms per {unit}: " + ", ".join(f"{p:.2f}" for p in per)
        if len(rows) > 1:
            marginal = [(b[f"{stage}_s"] - a[f"{stage}_s"]) / (clips(b, stage) - clips(a, stage)) * 1000
                        for a, b in zip(rows, rows[1:])]
            line += ";  marginal between sizes: " + ", ".join(f"{m:.2f}" for m in marginal)
            if len(marginal) > 1:
                line += f" (last / first: {marginal[-1] / marginal[0]:.2f}x)"
        lines.append(line)
    if len(rows) > 1:
        x = np.array([r["clips"] for r in rows], float)
        for key, what in (("peak_rss_mb", "peak RSS"), ("peak_anon_mb", "peak anonymous memory")):
            if key not in first:  # rows of a run before the anonymous part was recorded
                continue
            slope, _ = _fit_line(x, np.array([r[key] for r in rows]))
            growth = last[key] - first[key]
            lines.append(f"{what} grows {growth:.0f} MB from {first['clips']} to {last['clips']} clips "
                         f"({slope * 1000:.0f} MB per 1000 clips, least squares); goal: < 300 MB "
                         f"-> {'met' if growth < 300 else 'NOT met'}")
        lines.append(f"log-mel alone: {last['logmel_mb'] / last['clips'] * 1000:.0f} MB per 1000 clips "
                     "(128 x 251 float32 per clip)")
    return lines


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([r["clips"] for r in rows], float)
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for stage, marker in zip((*STAGES, "total"), "osd^"):
        y = np.array([r[f"{stage}_s"] for r in rows])
        ax_t.plot(x, y, marker=marker, label=stage)
        if len(x) > 1:
            slope, intercept = _fit_line(x, y)
            ax_t.plot(x, intercept + slope * x, ls=":", color=ax_t.lines[-1].get_color(), lw=1)
    ax_t.set(xlabel="clips", ylabel="wall time (s)", title="wall time (dotted: least-squares line)")
    ax_t.legend()
    for stage in STAGES:
        ax_m.plot(x, [r[f"{stage}_peak_mb"] for r in rows], marker="o", label=f"resident, {stage}")
        if f"{stage}_anon_peak_mb" in rows[0]:
            ax_m.plot(x, [r[f"{stage}_anon_peak_mb"] for r in rows], marker="x", ls="-.",
                      color=ax_m.lines[-1].get_color(), label=f"anonymous, {stage}")
    ax_m.plot(x, [r["baseline_rss_mb"] + r["logmel_mb"] for r in rows], ls="--", color="grey",
              label="baseline + one log-mel copy")
    judged = "peak_anon_mb" if "peak_anon_mb" in rows[0] else "peak_rss_mb"
    ax_m.axhline(rows[0][judged] + 300, color="red", ls=":",
                 label=f"goal: smallest size's {'anonymous' if judged == 'peak_anon_mb' else 'resident'} peak + 300 MB")
    ax_m.set(xlabel="clips", ylabel="resident memory, process tree (MB)", title="peak memory")
    ax_m.legend(fontsize=8)
    for ax in (ax_t, ax_m):
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 4000, 16000])
    parser.add_argument("--workers", type=int, default=2, help="feature extraction processes (features.workers)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--in-memory", action="store_true",
                        help="build the feature arrays in RAM (the path before streaming) instead of memory maps")
    parser.add_argument("--clips-dir", type=Path, default=None, help="where the synthetic clips are (kept)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/scaling"))
    parser.add_argument("--report-from", type=Path, default=None,
                        help="only write the table, CSV and plot from the JSON rows a previous run printed")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child is not None:  # one size, in its own process
        row = run_size(args.child, args.clips_dir, args.workers, args.epochs, args.in_memory)
        args.result.write_text(json.dumps(row))
        return

    if args.report_from is not None:  # the rows a previous run printed (e.g. one stopped before its largest size)
        rows = [json.loads(line) for line in args.report_from.read_text().splitlines() if line.startswith("{")]
        report(rows, args)
        return

    sizes = sorted(set(args.sizes))
    tmp = None
    if args.clips_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="ser-scaling-")
        args.clips_dir = Path(tmp.name)
    start = time.perf_counter()
    make_clips(args.clips_dir, sizes[-1])
    print(f"{sizes[-1]} synthetic clips ready in {args.clips_dir} ({time.perf_counter() - start:.0f} s, not timed)",
          flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        result = args.out / f".size{n}.json"
        cmd = [sys.executable, __file__, "--child", str(n), "--clips-dir", str(args.clips_dir),
               "--workers", str(args.workers), "--epochs", str(args.epochs), "--result", str(result),
               *(["--in-memory"] if args.in_memory else [])]
        load = os.getloadavg()[0]
        subprocess.run(cmd, check=True)
        row = json.loads(result.read_text())
        result.unlink()
        row["load_before"] = round(load, 2)
        row["load_after"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
        report(rows, args, final=n == sizes[-1])  # after every size: a run stopped early still leaves its curve
    if tmp is not None:
        tmp.cleanup()


def report(rows: list[dict], args, final: bool = True) -> None:
    """Table and summary on stdout (``final``), ``scaling.csv`` and ``scaling.png`` under ``--out``."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
               f"commit {commit or '?'}, workers {rows[0]['workers']}, epochs {rows[0]['epochs']}, "
               f"arrays {rows[0].get('arrays', 'in memory')}")
    cols = ["clips", "train_clips", "features_s", "scaling_s", "train_s", "total_s", "baseline_rss_mb",
            "features_peak_mb", "scaling_peak_mb", "train_peak_mb", "peak_rss_mb", "baseline_anon_mb",
            "features_anon_peak_mb", "scaling_anon_peak_mb", "train_anon_peak_mb", "peak_anon_mb", "logmel_mb"]
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "scaling.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    sizes = " ".join(str(r["clips"]) for r in rows)
    plot(rows, args.out / "scaling.png", f"bench/bench_scaling.py {sizes}: {machine}")
    if not final:
        return
    print(f"\n{machine}")
    print(" | ".join(cols))
    for row in rows:
        print(" | ".join(str(row.get(c, "")) for c in cols))
    for line in summarise(rows):
        print(line)
    print(f"wrote {args.out / 'scaling.csv'} and {args.out / 'scaling.png'}")

if __name__ == "__main__":
    main()

"""Feature extraction: the seed's per-feature librosa loop versus one STFT per clip.

    python bench/bench_features.py [--clips 200] [--repeat 3] [--workers 2 [--worker-clips 1000]]

Both compute the same features (MFCC 40, chroma 12, mel 128 means, log-mel
128 x 251 over 8 s at 16 kHz) from the same wav files, in one process, one
core; the first clips' features are checked equal (float tolerance) before
timing. Prints milliseconds per clip for each and the speed-up ratio. With
``--workers N`` it then times ``speech_emotion.features.extract_features`` as a
first pipeline run calls it (memory maps in a folder, a fresh feature cache) with
1, 2, ... N worker processes on the same clips, interleaved, and prints the gain
over one worker. Record the output in BENCHMARKS.md with the
machine and the command.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def seed_loop(path: str) -> tuple:
    """The seed's approach: librosa.load, then one librosa.feature call per feature."""
    import librosa

    y, sr = librosa.load(path, sr=16000)
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40).mean(axis=1)
    chroma = librosa.feature.chroma_stft(y=y, sr=sr).mean(axis=1)
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr)).mean(axis=1)
    padded = librosa.util.fix_length(y, size=8 * sr)
    logmel = librosa.power_to_db(librosa.feature.melspectrogram(y=padded, sr=sr, n_mels=128), ref=np.max)
    return mfcc, chroma, mel, logmel


def ours(path: str) -> tuple:
    from speech_emotion.audio import load_audio
    from speech_emotion.features import clip_features

    f = clip_features(load_audio(path))
    return f.mfcc, f.chroma, f.mel, f.logmel


def ours_without_tuning(path: str) -> tuple:
    """``features.chroma_tuning: false``: no tuning estimate for the chromagram (not the default)."""
    from speech_emotion.audio import load_audio
    from speech_emotion.features import FeatureParams, clip_features

    f = clip_features(load_audio(path), FeatureParams(chroma_tuning=False))
    return f.mfcc, f.chroma, f.mel, f.logmel


def make_clips(folder: Path, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        sr = [16000, 24414, 44100, 48000][i % 4]  # the four corpora's native rates
        dur = rng.uniform(1.3, 5.0)  # the seed's Table 1 range
        t = np.arange(int(dur * sr)) / sr
        y = 0.3 * np.sin(2 * np.pi * (150 + 50 * rng.random()) * t) + 0.01 * rng.standard_normal(t.size)
        path = folder / f"clip{i:04d}.wav"
        sf.write(path, y.astype(np.float32), sr, subtype="PCM_16")
        paths.append(str(path))
    return paths


def time_it(fn, paths: list[str]) -> float:
    start = time.perf_counter()
    for p in paths:
        fn(p)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="also time extract_features with 1..N processes")
    parser.add_argument("--worker-clips", type=int, default=1000,
                        help="clips for the workers' timing (each worker first spends ~2 s importing librosa)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_clips(Path(tmp), args.clips)
        for path in paths[:5]:  # warm-up (imports, numba JIT), and the same features from both
            for x, y, name in zip(seed_loop(path), ours(path), ("mfcc", "chroma", "mel", "logmel")):
                np.testing.assert_allclose(y, x, rtol=1e-4, atol=2e-3, err_msg=f"{name} of {path}")
        ours_without_tuning(paths[0])
        seed_t, our_t, untuned_t = [], [], []
        for _ in range(args.repeat):  # interleaved so machine noise hits both alike
            seed_t.append(time_it(seed_loop, paths))
            our_t.append(time_it(ours, paths))
            untuned_t.append(time_it(ours_without_tuning, paths))
    s, o, u = statistics.median(seed_t), statistics.median(our_t), statistics.median(untuned_t)
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"clips: {args.clips}, repeats: {args.repeat} (median)")
    print(f"seed per-feature loop: {1000 * s / args.clips:.1f} ms/clip")
    print(f"one STFT per clip:     {1000 * o / args.clips:.1f} ms/clip")
    print(f"speed-up: {s / o:.2f}x")
    print(f"one STFT, no chroma tuning estimate (chroma_tuning: false): {1000 * u / args.clips:.1f} ms/clip, "
          f"{s / u:.2f}x the seed loop")
    if args.workers > 1:
        with tempfile.TemporaryDirectory() as tmp:
            workers_scaling(make_clips(Path(tmp), args.worker_clips), args.workers, args.repeat)


def workers_scaling(paths: list[str], max_workers: int, repeat: int) -> None:
    """``extract_features`` on the pipeline's cold path (memory maps in the artifact's folder, a fresh
    feature cache written as it goes) with 1..max_workers processes, interleaved."""
    from speech_emotion.features import extract_features

    hashes = [f"{i:040x}" for i in range(len(paths))]

    def run(workers: int) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "artifact"
            folder.mkdir()
            start = time.perf_counter()
            extract_features(paths, [0] * len(paths), ["bench"] * len(paths), hashes, workers=workers,
                             min_clips_per_worker=1, progress=False, folder=folder, cache_dir=Path(tmp) / "cache")
            return time.perf_counter() - start

    counts = list(range(1, max_workers + 1))
    times: dict[int, list[float]] = {w: [] for w in counts}
    for _ in range(repeat):
        for w in counts:
            times[w].append(run(w))
    one = statistics.median(times[1])
    for w in counts:
        t = statistics.median(times[w])
        print(f"extract_features, {w} worker(s): {1000 * t / len(paths):.1f} ms/clip, "
              f"{len(paths) / t:.0f} clips/s, {one / t:.2f}x one worker")


if __name__ == "__main__":
    main()

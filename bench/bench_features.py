"""Feature extraction: the seed's per-feature librosa loop versus one STFT per clip.

    python bench/bench_features.py [--clips 200] [--repeat 3]

Both compute the same features (MFCC 40, chroma 12, mel 128 means, log-mel
128 x 251 over 8 s at 16 kHz) from the same wav files, in one process, one
core. Prints clips per second for each and the speed-up ratio; record the
output in BENCHMARKS.md with the machine and the command.
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_clips(Path(tmp), args.clips)
        a, b = seed_loop(paths[0]), ours(paths[0])  # warm-up (imports, numba JIT)
        assert a[3].shape == b[3].shape
        seed_t, our_t = [], []
        for _ in range(args.repeat):  # interleaved so machine noise hits both alike
            seed_t.append(time_it(seed_loop, paths))
            our_t.append(time_it(ours, paths))
    s, o = statistics.median(seed_t), statistics.median(our_t)
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"clips: {args.clips}, repeats: {args.repeat} (median)")
    print(f"seed per-feature loop: {1000 * s / args.clips:.1f} ms/clip")
    print(f"one STFT per clip:     {1000 * o / args.clips:.1f} ms/clip")
    print(f"speed-up: {s / o:.2f}x")


if __name__ == "__main__":
    main()

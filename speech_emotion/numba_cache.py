"""librosa, with numba's on-disk cache of its compiled kernels written by one process at a time.

librosa compiles its numba kernels with ``cache=True``: the first process that needs one compiles it
and writes it to numba's cache (``__pycache__`` beside librosa, or ``NUMBA_CACHE_DIR``); later
processes load it from there. Two processes compiling the same vectorized kernel at once can leave
files of the two compilations side by side, and every process that loads them afterwards dies of a
segmentation fault (numba/numba#10128, #4807). On a fresh install, two training runs started together
did exactly that, and every later run on that install crashed in its first librosa call.

:func:`librosa` is how the project imports librosa: the first call in a process compiles, or loads,
the kernels the project uses (half a second of a tone through the same librosa calls) while holding
an inter-process lock, so that only one process writes the cache at a time.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

_warmed = False


def lock_path() -> Path:
    """The lock shared by every process that writes the same numba cache (one per environment, or
    per ``NUMBA_CACHE_DIR``)."""
    where = os.environ.get("NUMBA_CACHE_DIR") or sys.prefix
    digest = hashlib.sha256(os.path.abspath(where).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"speech_emotion-numba-{digest}.lock"


def librosa(timeout: float = -1):
    """The ``librosa`` module, its kernels compiled or loaded under the lock on the first call in this
    process. ``timeout``: seconds to wait for another process's compilation (-1: as long as it takes);
    past it, :class:`filelock.Timeout`."""
    global _warmed
    import librosa as module

    if not _warmed:
        import numpy as np
        from filelock import FileLock

        with FileLock(str(lock_path()), timeout=timeout):
            _warm_up(module, np)
            _warmed = True
    return module


def _warm_up(librosa, np) -> None:
    """Half a second of a float32 tone through the librosa calls of the features and reports: the STFT,
    mel, dB, MFCC and chroma with its tuning estimate (piptrack's peak-picking kernels)."""
    sr = 16000
    y = np.sin(2 * np.pi * 220.0 * np.arange(sr // 2, dtype=np.float32) / sr).astype(np.float32)
    power = np.abs(librosa.stft(y, n_fft=512, hop_length=128)) ** 2
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr, n_mels=32), ref=np.max)
    librosa.feature.mfcc(S=mel_db, n_mfcc=13)
    librosa.feature.chroma_stft(S=power, sr=sr, n_fft=512, hop_length=128)

"""Augmented copies of the training clips (issue 11), made after the split, on the training split only.

Each copy of a clip is the clip's waveform with, as configured (null or 0 switches a part off):

- speed perturbation by a factor drawn from ``speed`` (resampling, so tempo and pitch move together,
  as in Ko et al., 2015, "Audio augmentation for speech recognition");
- a pitch shift of ``pitch_semitones`` (``librosa.effects.pitch_shift``, tempo kept);
- additive white noise at a signal-to-noise ratio drawn from ``noise_snr_db``;

then its features, as :func:`speech_emotion.features.clip_features` computes them, with SpecAugment-style
masks on the log-mel (Park et al., 2019): ``spec_time_masks`` bands of up to a tenth of the clip's
frames and ``spec_freq_masks`` bands of up to an eighth of the mel bands, set to the log-mel's floor
(``-top_db``, silence).

Every draw comes from a generator seeded by (``seed``, copy, the clip's content hash): a copy does not
depend on the other clips, their order or the number of workers, and the same seed gives the same
copies. Copies are cached like features (:class:`speech_emotion.features.FeatureCache`), under a key
that holds the augmentation's settings; this file is part of the feature code fingerprint, so an edit
here recomputes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from speech_emotion.config import AugmentationConfig
from speech_emotion.features import AUGMENTED_MARK, FeatureParams, FeatureSet, extract_features


@dataclass(frozen=True)
class Augmenter:
    """Copy number ``copy`` (from 1) of every clip, per ``config``."""

    config: AugmentationConfig
    copy: int

    def key(self) -> str:
        """What a copy depends on besides the clip: part of its cache key."""
        blob = json.dumps({**self.config.model_dump(exclude={"copies"}), "copy": self.copy}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def rng(self, clip_key: str) -> np.random.Generator:
        digest = hashlib.sha256(f"{self.config.seed}:{self.copy}:{clip_key}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def waveform(self, y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        """Speed, pitch and noise, each as configured, on a mono float32 clip at ``sr``."""
        c = self.config
        y = np.asarray(y, dtype=np.float32)
        if c.speed is not None:
            import soxr

            factor = float(rng.uniform(*c.speed))
            y = soxr.resample(y, sr, sr / factor).astype(np.float32)  # played back at sr: faster by factor
        if c.pitch_semitones is not None:
            from speech_emotion import numba_cache

            steps = float(rng.uniform(*c.pitch_semitones))
            y = numba_cache.librosa().effects.pitch_shift(y, sr=sr, n_steps=steps).astype(np.float32)
        if c.noise_snr_db is not None:
            snr = float(rng.uniform(*c.noise_snr_db))
            power = float(np.mean(y.astype(np.float64) ** 2))
            y = (y + rng.standard_normal(y.shape) * np.sqrt(power / 10 ** (snr / 10))).astype(np.float32)
        return y

    def spectrogram(self, logmel: np.ndarray, n_frames: int, floor: float, rng: np.random.Generator) -> np.ndarray:
        """SpecAugment time and frequency masks on a (mel, frames) log-mel, within the clip's own frames."""
        out = np.array(logmel, dtype=np.float32, copy=True)
        n_mels, frames = out.shape
        frames = max(1, min(int(n_frames), frames))
        for _ in range(self.config.spec_time_masks):
            width = int(rng.integers(0, max(1, frames // 10) + 1))
            start = int(rng.integers(0, frames - width + 1))
            out[:, start : start + width] = floor
        for _ in range(self.config.spec_freq_masks):
            width = int(rng.integers(0, max(1, n_mels // 8) + 1))
            start = int(rng.integers(0, n_mels - width + 1))
            out[start : start + width, :frames] = floor
        return out


#: :data:`speech_emotion.features.MIN_CLIPS_PER_WORKER` for augmented copies: one costs about 13 times a
#: plain clip (speed and pitch perturbation resample it; 65 ms against 5 ms for RAVDESS clips of 3-4 s on
#: one core), so a worker pays for its start-up with some 40 of them
MIN_CLIPS_PER_WORKER = 40


def augment_training_set(features: FeatureSet, utterances: pd.DataFrame, config: AugmentationConfig,
                         params: FeatureParams, cache_dir=None, workers: int = 1, progress: bool = True,
                         folder: str | Path | None = None) -> FeatureSet:
    """``features`` (a training split's, unscaled) followed by ``config.copies`` augmented copies of each
    of its clips, copy by copy; a copy's ``utterance_ids`` is its clip's path + ``#aug<copy>``.
    ``utterances`` gives each path's content hash (the copies' cache key and random seed). With
    ``folder``, the result is built there as memory maps (the copies pass through a sub-folder of it)."""
    if config.copies == 0 or len(features) == 0:
        return features
    paths = [str(p) for p in features.utterance_ids]
    hashes = utterances.drop_duplicates("path").set_index("path")["content_hash"].reindex(paths)
    if hashes.isna().any():
        missing = [p for p, h in zip(paths, hashes) if pd.isna(h)][:3]
        raise ValueError(f"augmentation: no content hash for {missing} in the utterance table")
    with contextlib.ExitStack() as stack:
        parts = [features]
        for copy in range(1, config.copies + 1):
            augmenter = Augmenter(config, copy)
            scratch = None if folder is None else stack.enter_context(tempfile.TemporaryDirectory(dir=folder))
            extracted = extract_features(paths, features.labels, features.corpus,
                                         content_hashes=[f"{h}.aug{augmenter.key()}" for h in hashes],
                                         params=params, cache_dir=cache_dir, workers=workers, progress=progress,
                                         augmenter=augmenter, folder=scratch,
                                         min_clips_per_worker=MIN_CLIPS_PER_WORKER)
            extracted.utterance_ids = np.asarray([f"{p}{AUGMENTED_MARK}{copy}" for p in paths])
            parts.append(extracted)
        return FeatureSet.concatenate(parts, folder)

"""Augmented copies of the training clips: each part as configured, deterministic, cached, off when asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from pydantic import ValidationError

from speech_emotion.augmentation import Augmenter, augment_training_set
from speech_emotion.config import AugmentationConfig
from speech_emotion.features import FeatureParams, extract_features

SR = 16000
PARAMS = FeatureParams(duration_s=2.0)
ONLY = dict(noise_snr_db=None, speed=None, pitch_semitones=None, spec_time_masks=0, spec_freq_masks=0)


def _tone(seconds: float = 1.5, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def _corpus(tmp_path, n: int = 3):
    paths = []
    for i in range(n):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, _tone(1.0 + 0.25 * i, 180.0 + 40 * i), SR)
        paths.append(str(path))
    utterances = pd.DataFrame({"path": paths, "content_hash": [f"hash{i}" for i in range(n)]})
    features = extract_features(paths, [0, 1, 2][:n], ["crema"] * n, params=PARAMS, progress=False)
    return utterances, features


def test_noise_is_added_at_a_snr_in_the_range():
    augmenter = Augmenter(AugmentationConfig(copies=1, **{**ONLY, "noise_snr_db": (10, 30)}), 1)
    y = _tone()
    for key in ("a", "b", "c"):
        noisy = augmenter.waveform(y, SR, augmenter.rng(key))
        snr = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean((noisy - y).astype(np.float64) ** 2))
        assert 9.5 < snr < 30.5 and noisy.shape == y.shape


def test_speed_changes_the_length_and_pitch_keeps_it():
    y = _tone()
    fast = Augmenter(AugmentationConfig(copies=1, **{**ONLY, "speed": (1.25, 1.25)}), 1)
    assert len(fast.waveform(y, SR, fast.rng("a"))) == pytest.approx(len(y) / 1.25, abs=2)
    pitch = Augmenter(AugmentationConfig(copies=1, **{**ONLY, "pitch_semitones": (12, 12)}), 1)
    shifted = pitch.waveform(y, SR, pitch.rng("a"))
    assert len(shifted) == len(y)
    spectrum = np.abs(np.fft.rfft(shifted))
    assert np.fft.rfftfreq(len(shifted), 1 / SR)[spectrum.argmax()] == pytest.approx(440.0, rel=0.02)  # an octave up


def test_spec_masks_set_bands_to_the_floor_within_the_clip():
    augmenter = Augmenter(AugmentationConfig(copies=1, **{**ONLY, "spec_time_masks": 3, "spec_freq_masks": 2}), 1)
    logmel = np.random.default_rng(0).uniform(-60, 0, (32, 50)).astype(np.float32)
    masked = augmenter.spectrogram(logmel, 40, -80.0, augmenter.rng("a"))
    changed = masked != logmel
    assert (masked[changed] == -80.0).all() and changed.any()
    assert not changed[:, 40:].any()  # the padding after the clip's 40 frames is left alone
    assert set(np.flatnonzero(changed.all(axis=0))) <= set(range(40))


def test_copies_follow_the_originals_are_deterministic_and_cached(tmp_path):
    utterances, features = _corpus(tmp_path)
    config = AugmentationConfig(copies=2, seed=3)
    out = augment_training_set(features, utterances, config, PARAMS, cache_dir=tmp_path / "cache", progress=False)
    assert len(out) == 3 * len(features)
    assert list(out.utterance_ids[:3]) == list(features.utterance_ids)
    assert list(out.utterance_ids[3:6]) == [f"{p}#aug1" for p in features.utterance_ids]
    np.testing.assert_array_equal(out.labels, np.tile(features.labels, 3))
    np.testing.assert_array_equal(out.originals().logmel, features.logmel)  # what the baseline's functionals describe
    assert np.shares_memory(out.originals().logmel, out.logmel)  # a view of the leading rows, not a copy
    shuffled = out.subset(np.arange(len(out))[::-1])  # originals not first: still found, by their ids
    np.testing.assert_array_equal(shuffled.originals().logmel, features.logmel[::-1])
    assert features.originals() is features
    assert not np.allclose(out.logmel[3:6], features.logmel) and not np.allclose(out.logmel[3:6], out.logmel[6:9])
    again = augment_training_set(features, utterances, config, PARAMS, progress=False)  # no cache: recomputed
    np.testing.assert_array_equal(again.logmel, out.logmel)
    cached = augment_training_set(features, utterances, config, PARAMS, cache_dir=tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(cached.logmel, out.logmel)
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 6  # two copies of three clips
    other = augment_training_set(features, utterances, config.model_copy(update={"seed": 4}), PARAMS, progress=False)
    assert not np.allclose(other.logmel[3:], out.logmel[3:])
    # a copy depends on its clip only: augmenting a subset gives the same copies
    subset = augment_training_set(features.subset(np.array([2, 0])), utterances, config, PARAMS, progress=False)
    np.testing.assert_array_equal(subset.logmel[2:4], out.logmel[[5, 3]])


def test_no_copies_leaves_the_split_alone_and_bad_settings_are_refused(tmp_path):
    utterances, features = _corpus(tmp_path, 2)
    assert augment_training_set(features, utterances, AugmentationConfig(), PARAMS) is features
    off = AugmentationConfig(copies=1, noise_snr_db=0, speed=None, pitch_semitones=0, spec_time_masks=0)
    assert off.noise_snr_db is None and off.pitch_semitones is None
    with pytest.raises(ValidationError, match="runs backwards"):
        AugmentationConfig(speed=(1.1, 0.9))
    with pytest.raises(ValidationError, match="must be > 0"):
        AugmentationConfig(speed=(0.0, 1.1))
    with pytest.raises(ValueError, match="no content hash"):
        augment_training_set(features, utterances.iloc[:1], AugmentationConfig(copies=1), PARAMS, progress=False)


def test_augmented_set_streamed_into_a_folder_equals_the_in_memory_one(tmp_path):
    utterances, features = _corpus(tmp_path)
    config = AugmentationConfig(copies=2, seed=3)
    folder = tmp_path / "artifact"
    folder.mkdir()
    streamed = augment_training_set(features, utterances, config, PARAMS, progress=False, folder=folder)
    in_memory = augment_training_set(features, utterances, config, PARAMS, progress=False)
    for name in features.ARRAYS:
        arr = getattr(streamed, name)
        assert isinstance(arr, np.memmap) and Path(arr.filename).parent == folder, name
        np.testing.assert_array_equal(np.asarray(arr), getattr(in_memory, name), err_msg=name)
    # the copies' scratch folders are gone: only the artifact's arrays are left
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.npy" for n in features.ARRAYS)
